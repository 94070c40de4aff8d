// What the pages' scripts share besides the API: the events sync.js and the settings page
// fire on `document`, htmx and Swagger UI. Written by hand (api.d.ts is generated); checked with
// the scripts by `make typecheck-js` (jsconfig.json).

import type { components } from "./api";
import type { ApiError } from "../js/api.js";

type Settings = components["schemas"]["Settings"];

declare global {
  /** Who caused a change: the first load, this tab, another tab, another device. */
  type SettingsSource = "load" | "self" | "tab" | "remote";
  type SyncStatus = "loading" | "ok" | "offline" | "error";

  interface SettingsChangedDetail {
    settings: Settings;
    previous: Settings | null;
    /** Dotted keys whose value differs, e.g. ["theme", "notifications.push"]. */
    changed: string[];
    source: SettingsSource;
    etag: string | null;
  }

  interface SettingsSyncDetail {
    status: SyncStatus;
    error: ApiError | null;
    /** When the server last confirmed the copy. */
    checkedAt: Date | null;
  }

  /** Sent by the settings page's htmx responses (HX-Trigger) after a save. */
  type SettingsSavedDetail = { theme?: string } | null;

  interface DocumentEventMap {
    "settings-changed": CustomEvent<SettingsChangedDetail>;
    "settings-sync": CustomEvent<SettingsSyncDetail>;
    "settings-saved": CustomEvent<SettingsSavedDetail>;
  }

  interface HTMLElementEventMap {
    "settings-saved": CustomEvent<SettingsSavedDetail>;
  }

  interface Window {
    /** Vendored Swagger UI, on the API reference page. */
    SwaggerUIBundle?: (config: Record<string, unknown>) => unknown;
    /** Vendored htmx, when the page loaded it. */
    htmx?: {
      ajax(verb: string, path: string, context: Record<string, unknown>): Promise<void>;
    };
  }
}
