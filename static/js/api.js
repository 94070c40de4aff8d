// The one client of the settings API, shared by every page: same-origin fetch with the
// session cookie, the CSRF header, JSON in and out, and the ETag of the last response.
//
//   import * as api from "./api.js";
//   const { settings } = await api.getSettings();            // 200, remembers the ETag
//   const { changed } = await api.getSettings({ conditional: true });  // 304 -> changed false
//   await api.patchSettings({ theme: "dark" });              // If-Match: the remembered ETag
//
// Errors are ApiError objects: `status` (0 when the server could not be reached), `detail`
// (the problem document's human text, already in the user's language), `errors` (dotted key
// to messages, for 422) and `etag` (the current ETag, for 412).

import { csrfToken } from "./csrf.js";

// The bodies' types, generated from the OpenAPI document (make docs).
/** @typedef {import("../types/api").components["schemas"]["Settings"]} Settings */
/** @typedef {import("../types/api").components["schemas"]["SettingsPatch"]} SettingsPatch */
/** @typedef {import("../types/api").components["schemas"]["SettingsUpdate"]} SettingsUpdate */
/** @typedef {import("../types/api").components["schemas"]["ResetRequest"]["keys"]} ResetKeys */
/** @typedef {import("../types/api").components["schemas"]["ValidationProblem"]} ValidationProblem */
/** @typedef {{ settings: Settings, etag: string | null }} Written */
/** @typedef {{ ifMatch?: boolean, contentType?: string }} WriteOptions */

// static/ and api/ are siblings under the app's root, so this also works behind a prefix.
export const SETTINGS_URL = new URL("../../api/user/settings", import.meta.url).pathname;

const JSON_TYPE = "application/json";
const MERGE_PATCH_TYPE = "application/merge-patch+json";

/** @type {string | null} */
let clientName = null;
/** @type {string | null} */
let lastEtag = null;
/** @type {Settings | null} */
let lastSettings = null;
let pendingWrites = 0;
/** @type {Set<(written: Written) => void>} */
const writeListeners = new Set();

export class ApiError extends Error {
  /**
   * @param {string} message
   * @param {{ status?: number, detail?: string, errors?: ValidationProblem["errors"],
   *   etag?: string | null, cause?: unknown }} [options]
   */
  constructor(message, { status = 0, detail = "", errors = {}, etag = null, cause } = {}) {
    super(message, cause ? { cause } : undefined);
    this.name = "ApiError";
    this.status = status;
    this.detail = detail || message;
    this.errors = errors;
    this.etag = etag;
  }

  // True when no answer came back at all: offline, server down, request aborted.
  get unreachable() {
    return this.status === 0;
  }
}

// Names the page that writes, for the change history ("Changed by: Dashboard").
/** @param {string} name */
export function identify(name) {
  clientName = name;
}


/**
 * @param {Response} response
 * @returns {Promise<any>} the parsed JSON body, or null
 */
async function readBody(response) {
  const type = (response.headers.get("Content-Type") || "").split(";")[0].trim();
  if (type !== JSON_TYPE && !type.endsWith("+json")) return null;
  try {
    return await response.json();
  } catch {
    return null;
  }
}

// Sends one request; resolves to { status, body, etag } for 2xx and 304, rejects with
// ApiError for anything else, including a network failure.
/**
 * @param {string} method
 * @param {string} url
 * @param {{ body?: unknown, headers?: Record<string, string>, contentType?: string,
 *   signal?: AbortSignal }} [options]
 * @returns {Promise<{ status: number, body: any, etag: string | null }>}
 */
export async function request(method, url, { body, headers = {}, contentType = JSON_TYPE, signal } = {}) {
  /** @type {RequestInit & { headers: Record<string, string> }} */
  const init = {
    method,
    credentials: "same-origin",
    // The API marks settings "no-cache"; we revalidate ourselves with If-None-Match.
    cache: "no-store",
    headers: { Accept: `${JSON_TYPE}, application/problem+json`, ...headers },
    signal,
  };
  if (method !== "GET" && method !== "HEAD") {
    init.headers["X-CSRFToken"] = csrfToken();
    if (clientName) init.headers["X-Settings-Client"] = clientName;
  }
  if (body !== undefined) {
    init.headers["Content-Type"] = contentType;
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (/** @type {any} */ cause) {
    throw new ApiError(cause && cause.message ? cause.message : "Network error", { cause });
  }
  const etag = response.headers.get("ETag");
  if (response.ok || response.status === 304) {
    return { status: response.status, body: response.status === 304 ? null : await readBody(response), etag };
  }
  const problem = (await readBody(response)) || {};
  throw new ApiError(problem.detail || problem.title || response.statusText || String(response.status), {
    status: response.status,
    detail: problem.detail || "",
    errors: problem.errors || {},
    etag,
  });
}

/**
 * @param {Settings} settings
 * @param {string | null} etag
 */
function remember(settings, etag) {
  lastSettings = settings;
  if (etag) lastEtag = etag;
}

// Adopts a copy known to be current (rendered into the page by the server, or broadcast
// by another tab), so the next read can be a conditional one that costs a 304.
/**
 * @param {Settings | null | undefined} settings
 * @param {string | null | undefined} etag
 */
export function adopt(settings, etag) {
  if (settings && etag) remember(settings, etag);
}

export function cached() {
  return { settings: lastSettings, etag: lastEtag };
}

export function writesInFlight() {
  return pendingWrites > 0;
}

// Called with ({ settings, etag }) after every successful write through this client.
/** @param {(written: Written) => void} listener */
export function onWrite(listener) {
  writeListeners.add(listener);
  return () => writeListeners.delete(listener);
}

// Resolves to { settings, etag, changed }; with `conditional`, an unchanged copy is a 304.
/**
 * @param {{ conditional?: boolean, signal?: AbortSignal }} [options]
 * @returns {Promise<{ settings: Settings | null, etag: string | null, changed: boolean }>}
 */
export async function getSettings({ conditional = false, signal } = {}) {
  /** @type {Record<string, string>} */
  const headers = {};
  if (conditional && lastEtag && lastSettings) headers["If-None-Match"] = lastEtag;
  const { status, body, etag } = await request("GET", SETTINGS_URL, { headers, signal });
  if (status === 304) return { settings: lastSettings, etag: lastEtag, changed: false };
  const changed = etag !== lastEtag;
  remember(body, etag);
  return { settings: body, etag, changed };
}

/**
 * @param {string} method
 * @param {string} url
 * @param {unknown} body
 * @param {WriteOptions} [options]
 * @returns {Promise<Written>}
 */
async function write(method, url, body, { ifMatch = true, contentType } = {}) {
  /** @type {Record<string, string>} */
  const headers = {};
  // Without a known ETag we cannot claim a version; the server then simply applies it.
  if (ifMatch && lastEtag) headers["If-Match"] = lastEtag;
  pendingWrites += 1;
  try {
    const response = await request(method, url, { body, headers, contentType });
    remember(response.body, response.etag);
    for (const listener of writeListeners) listener({ settings: response.body, etag: response.etag });
    return { settings: response.body, etag: response.etag };
  } finally {
    pendingWrites -= 1;
  }
}

// JSON Merge Patch: the given keys change, a null resets a key to its default. A 412 means
// another tab or device wrote first: reload with getSettings() before trying again.
/**
 * @param {SettingsPatch} patch
 * @param {WriteOptions} [options]
 */
export function patchSettings(patch, options = {}) {
  return write("PATCH", SETTINGS_URL, patch, { contentType: MERGE_PATCH_TYPE, ...options });
}

/**
 * @param {SettingsUpdate} settings
 * @param {WriteOptions} [options]
 */
export function putSettings(settings, options = {}) {
  return write("PUT", SETTINGS_URL, settings, options);
}

// Every key back to its default, or only `keys` (dotted names or groups).
/**
 * @param {ResetKeys | null} [keys]
 * @param {WriteOptions} [options]
 */
export function resetSettings(keys, options = {}) {
  return write("POST", `${SETTINGS_URL}/reset`, keys ? { keys } : {}, options);
}

/** @returns {Promise<Record<string, unknown>>} the JSON Schema of the settings */
export async function getSchema() {
  const { body } = await request("GET", `${SETTINGS_URL}/schema`, {
    headers: { Accept: "application/schema+json, application/json" },
  });
  return body;
}
