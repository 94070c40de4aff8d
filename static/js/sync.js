// Keeps every open tab and device in step with the user's settings.
//
// Other tabs of this browser hear about a change at once (BroadcastChannel, or the storage
// event where that is missing). Other devices are caught by a conditional GET every few
// seconds while the page is visible, and at once when it regains focus: an unchanged copy
// costs a 304. Loaded on every signed-in page by base.html.
//
// For pages: every change is announced as a cancelable `settings-changed` event on
// `document`, detail { settings, previous, changed: [dotted keys], source, etag }, where
// source is "load", "self" (this tab wrote), "tab" (another tab) or "remote" (another
// device). Unless a listener calls preventDefault(), a change from elsewhere re-renders the
// page's <main> (a new language reloads the whole page). `settings-sync` reports each
// check: detail { status: "loading" | "ok" | "offline" | "error", error, checkedAt }.

import * as api from "./api.js";
import { applyTheme } from "./theme.js";

/** @typedef {import("./api.js").Settings} Settings */
/** @typedef {{ type: "settings", from: string, settings: Settings, etag: string }} Message */
/**
 * @typedef {object} SyncState
 * @property {Settings | null} settings
 * @property {string | null} etag
 * @property {SyncStatus} status
 * @property {import("./api.js").ApiError | null} error
 * @property {Date | null} checkedAt when the server last confirmed the copy
 */

const CHANNEL_NAME = "user-settings";
const MESSAGE_KEY = "user-settings:message";
const ETAG_KEY = "user-settings:etag";
const DEFAULT_POLL_MS = 10000;

const tabId = Math.random().toString(36).slice(2) + Date.now().toString(36);
/** @type {HTMLElement | null} */
const pollElement = document.querySelector("[data-poll-ms]");
const pollMs = Number(pollElement && pollElement.dataset.pollMs) || DEFAULT_POLL_MS;

// checkedAt: when the server last confirmed the copy (a Date), or null.
/** @type {SyncState} */
const state = { settings: null, etag: null, status: "loading", error: null, checkedAt: null };
/** @type {BroadcastChannel | null} */
let channel = null;
/** @type {number | undefined} */
let pollTimer;
/** @type {Promise<void> | null} */
let inflight = null;
let lastCheck = 0;

/** @returns {SyncState} */
export function getState() {
  return { ...state };
}

export function pollInterval() {
  return pollMs;
}

// Reported after every check, not only on a change, so pages can show when it last ran.
/**
 * @param {SyncStatus} status
 * @param {import("./api.js").ApiError | null} [error]
 */
function setStatus(status, error = null) {
  state.status = status;
  state.error = error;
  document.dispatchEvent(
    new CustomEvent("settings-sync", { detail: { status, error, checkedAt: state.checkedAt } }),
  );
}

// Dotted keys whose value differs, e.g. ["theme", "notifications.push"].
/**
 * @param {Record<string, any> | null | undefined} before
 * @param {Record<string, any> | null | undefined} after
 * @returns {string[]}
 */
function changedKeys(before, after, prefix = "") {
  const keys = new Set([...Object.keys(before || {}), ...Object.keys(after || {})]);
  const changed = [];
  for (const key of keys) {
    if (!prefix && key === "updated_at") continue;
    const a = before ? before[key] : undefined;
    const b = after ? after[key] : undefined;
    if (a && b && typeof a === "object" && typeof b === "object") {
      changed.push(...changedKeys(a, b, `${prefix}${key}.`));
    } else if (a !== b) {
      changed.push(prefix + key);
    }
  }
  return changed;
}

/** @param {string} key */
function readStorage(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null; // Storage can be disabled; tabs then rely on polling alone.
  }
}

/**
 * @param {string} key
 * @param {string} value
 */
function writeStorage(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // Full or disabled storage only costs the fallback channel.
  }
}

/**
 * @param {Settings | null} settings
 * @param {string | null} etag
 */
function broadcast(settings, etag) {
  const message = { type: "settings", from: tabId, settings, etag };
  if (channel) {
    channel.postMessage(message);
  } else {
    // A new value every time, or the storage event would not fire for a repeat.
    writeStorage(MESSAGE_KEY, JSON.stringify({ ...message, at: Date.now() }));
  }
}

/** @param {string[]} changed */
function defaultAction(changed) {
  if (changed.includes("locale")) {
    // Every string on the page is in the old language.
    window.location.reload();
    return;
  }
  const main = document.querySelector("main");
  if (window.htmx && main) {
    // A plain (non-htmx) request, so the view sends the whole page; we keep only <main>.
    window.htmx.ajax("GET", window.location.href, {
      target: main,
      select: "main",
      swap: "outerHTML",
      headers: { "HX-Request": "false" },
    });
  } else {
    window.location.reload();
  }
}

/**
 * @param {Settings | null} settings
 * @param {string | null} etag
 * @param {SettingsSource} source
 */
function accept(settings, etag, source) {
  if (!settings) return;
  const previous = state.settings;
  if (etag && etag === state.etag && source !== "load") return;
  state.settings = settings;
  state.etag = etag;
  applyTheme(settings.theme);
  if (etag) writeStorage(ETAG_KEY, etag);
  if (source === "self" || source === "remote") broadcast(settings, etag);
  const changed = changedKeys(previous, settings);
  if (source !== "load" && changed.length === 0) return;
  const event = new CustomEvent("settings-changed", {
    cancelable: true,
    detail: { settings, previous, changed, source, etag },
  });
  const notPrevented = document.dispatchEvent(event);
  if (notPrevented && (source === "tab" || source === "remote")) defaultAction(changed);
}

/** @param {Message | null | undefined} message */
function receive(message) {
  if (!message || message.type !== "settings" || message.from === tabId) return;
  const { settings, etag } = message;
  if (!settings || !etag || etag === state.etag) return;
  // Messages from several tabs can cross; never step back to an older copy.
  // (A null updated_at parses as NaN, which is never newer nor older.)
  const mine = state.settings && Date.parse(/** @type {string} */ (state.settings.updated_at));
  if (mine && Date.parse(/** @type {string} */ (settings.updated_at)) < mine) return;
  api.adopt(settings, etag);
  accept(settings, etag, "tab");
}

function schedule() {
  clearTimeout(pollTimer);
  pollTimer = undefined;
  if (document.visibilityState === "visible") pollTimer = setTimeout(() => refresh(), pollMs);
}

/** @param {SettingsSource} source */
async function check(source) {
  if (api.writesInFlight()) return; // The write's answer is newer than any poll's.
  const { settings, etag, changed } = await api.getSettings({ conditional: true });
  lastCheck = Date.now();
  state.checkedAt = new Date(lastCheck);
  if (changed || etag !== state.etag) accept(settings, etag, source);
}

// Asks the server whether anything changed; resolves once the answer has been applied.
// `source` says who caused a change if there is one ("remote" unless told); `fresh` asks
// for an answer given after this call, not one already under way.
/**
 * @param {{ source?: SettingsSource, fresh?: boolean }} [options]
 * @returns {Promise<void>}
 */
export function refresh({ source = "remote", fresh = false } = {}) {
  if (inflight) {
    // A poll already under way may have been answered before a write it must see.
    return source === "remote" && !fresh ? inflight : inflight.then(() => refresh({ source, fresh }));
  }
  clearTimeout(pollTimer);
  inflight = (async () => {
    try {
      await check(source);
      setStatus("ok");
    } catch (/** @type {any} */ error) {
      setStatus(error.unreachable ? "offline" : "error", error);
    } finally {
      inflight = null;
      schedule();
    }
  })();
  return inflight;
}

function seedFromPage() {
  /** @type {HTMLElement | null} */
  const element = document.querySelector("[data-settings][data-settings-etag]");
  if (!element) return;
  // The selector guarantees both attributes.
  const etag = /** @type {string} */ (element.dataset.settingsEtag);
  try {
    const settings = JSON.parse(/** @type {string} */ (element.dataset.settings));
    api.adopt(settings, etag);
    state.settings = settings;
    state.etag = etag;
  } catch {
    // A page that cannot be read simply costs a full first GET.
  }
}

async function start() {
  seedFromPage();
  if ("BroadcastChannel" in window) {
    channel = new BroadcastChannel(CHANNEL_NAME);
    channel.addEventListener("message", (event) => receive(event.data));
  } else {
    // (After the `in` test tsc types `window` as never here; the cast says what it is.)
    /** @type {Window} */ (window).addEventListener("storage", (event) => {
      if (event.key !== MESSAGE_KEY || !event.newValue) return;
      try {
        receive(JSON.parse(event.newValue));
      } catch {
        // Another app's value under our key; not ours to read.
      }
    });
  }

  // Writes made through api.js on this page (the dashboard's theme control).
  api.onWrite(({ settings, etag }) => accept(settings, etag, "self"));

  // The settings page saves with htmx; its response fires `settings-saved` (HX-Trigger).
  document.addEventListener("settings-saved", () => refresh({ source: "self" }));

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refresh();
    else schedule();
  });
  // Focus and visibility often arrive together; one request answers both.
  window.addEventListener("focus", () => {
    if (Date.now() - lastCheck > 1000) refresh();
  });
  window.addEventListener("online", () => refresh());

  // A save made without JavaScript (a form POST) told nobody: tell the other tabs now.
  const known = readStorage(ETAG_KEY);
  await refresh({ source: "load" });
  if (state.status === "ok" && state.etag && known !== state.etag) {
    writeStorage(ETAG_KEY, state.etag);
    broadcast(state.settings, state.etag);
  }
}

start();
