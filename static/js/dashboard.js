// The dashboard: shows the settings from the API, and changes the theme optimistically.
// sync.js keeps the data current and tells us about every change; this module only draws
// it. Which rows there are, and how each value reads, comes from the page: the server
// renders one row per preference of the registry, and the labels of every choice
// (data-labels). Every sentence comes from <template id="dashboard-messages">, so the server
// translates them.

import { announce } from "./announce.js";
import * as api from "./api.js";
import * as sync from "./sync.js";
import { applyTheme } from "./theme.js";

/** @typedef {import("./api.js").Settings} Settings */
/** @typedef {import("./api.js").ApiError} ApiError */

const NOTICE_MS = 6000;

// What the page is doing, in one place.
/**
 * @type {{ loadedOnce: boolean, saving: boolean, desired: string | null, inConflict: boolean,
 *   noticeTimer: number | undefined }}
 */
const state = {
  loadedOnce: false,
  saving: false,
  // The theme chosen while a save was under way: sent when that save ends.
  desired: null,
  // A 412 is being resolved: the reload it causes is not "changed on another device".
  inConflict: false,
  noticeTimer: undefined,
};

/**
 * The page's elements; all of them are rendered with the dashboard.
 * @typedef {object} Ui
 * @property {HTMLElement} root
 * @property {Record<string, Record<string, string>>} labels
 * @property {DocumentFragment} messages
 * @property {HTMLElement} statusBox
 * @property {HTMLElement} statusText
 * @property {HTMLElement} errorBox
 * @property {HTMLElement} errorTitle
 * @property {HTMLElement} errorDetail
 * @property {HTMLButtonElement} retryButton
 * @property {HTMLElement} signedOut
 * @property {HTMLElement} picker
 * @property {HTMLElement} systemHint
 * @property {HTMLElement} notice
 * @property {HTMLElement} summary
 * @property {HTMLTimeElement} updatedAt
 * @property {HTMLTimeElement} lastChecked
 * @property {MediaQueryList} prefersDark
 */

/** @type {Ui} */
let ui;

const root = document.getElementById("dashboard");
if (root) {
  // Its writes show in the history as made on the dashboard.
  api.identify("dashboard");
  ui = elements(root);
  start();
}

/**
 * @param {HTMLElement} dashboard
 * @returns {Ui}
 */
function elements(dashboard) {
  // Typed by Ui: the template renders every one of these ids with the dashboard.
  const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
  return {
    root: dashboard,
    labels: JSON.parse(dashboard.dataset.labels || "{}"),
    messages: $("dashboard-messages").content,
    statusBox: $("sync-status"),
    statusText: $("sync-status-text"),
    errorBox: $("dashboard-error"),
    errorTitle: $("dashboard-error-title"),
    errorDetail: $("dashboard-error-detail"),
    retryButton: $("dashboard-retry"),
    signedOut: $("dashboard-signed-out"),
    picker: $("theme-picker"),
    systemHint: $("system-hint"),
    notice: $("theme-message"),
    summary: $("settings-summary"),
    updatedAt: $("updated-at"),
    lastChecked: $("last-checked"),
    prefersDark: window.matchMedia("(prefers-color-scheme: dark)"),
  };
}

// --- words ---------------------------------------------------------------------------

/**
 * @param {string} key
 * @param {Record<string, string>} [values]
 */
function text(key, values = {}) {
  const element = ui.messages.querySelector(`[data-message="${key}"]`);
  let result = element ? /** @type {string} */ (element.textContent).trim() : key;
  for (const [name, value] of Object.entries(values)) result = result.replace(`{${name}}`, value);
  return result;
}

/**
 * @param {string} key
 * @param {unknown} value
 */
function label(key, value) {
  return (ui.labels[key] && ui.labels[key][/** @type {string} */ (value)]) || String(value);
}

/**
 * @param {string} message
 * @param {"success" | "info" | "error"} kind
 * @param {{ transient?: boolean }} [options]
 */
function showNotice(message, kind, { transient = false } = {}) {
  window.clearTimeout(state.noticeTimer);
  ui.notice.textContent = message;
  ui.notice.dataset.kind = kind;
  ui.notice.hidden = false;
  announce(message);
  if (transient) state.noticeTimer = window.setTimeout(clearNotice, NOTICE_MS);
}

function clearNotice() {
  window.clearTimeout(state.noticeTimer);
  ui.notice.hidden = true;
  ui.notice.textContent = "";
}

// --- drawing the settings ------------------------------------------------------------

// A dotted key's value in the API's document, where groups nest.
/**
 * @param {Settings} settings
 * @param {string} key
 * @returns {unknown}
 */
function valueOf(settings, key) {
  return key
    .split(".")
    .reduce((/** @type {any} */ node, part) => (node == null ? undefined : node[part]), settings);
}

/** @param {HTMLElement} cell */
function highlight(cell) {
  const row = /** @type {HTMLElement} */ (cell.closest(".summary__row"));
  row.classList.remove("is-updated");
  void row.offsetWidth; // restart the highlight animation
  row.classList.add("is-updated");
}

/**
 * @param {HTMLElement} cell
 * @param {unknown} value
 */
function drawValue(cell, value) {
  if (cell.dataset.kind === "boolean") {
    const badge = /** @type {HTMLElement} */ (cell.querySelector(".toggle-badge"));
    badge.dataset.on = String(Boolean(value));
    badge.textContent = text(value ? "on" : "off");
  } else {
    const shown = label(/** @type {string} */ (cell.dataset.key), value);
    if (cell.textContent !== shown) cell.textContent = shown;
  }
}

// In the user's language and time zone, as the server renders "last saved".
/**
 * @param {Date} moment
 * @param {{ date?: boolean }} [options]
 */
function formatMoment(moment, { date = true } = {}) {
  const { settings } = sync.getState();
  /** @type {Intl.DateTimeFormatOptions} */
  const options = { timeStyle: "medium", timeZone: settings ? settings.timezone : undefined };
  if (date) options.dateStyle = "medium";
  try {
    return new Intl.DateTimeFormat(document.documentElement.lang || undefined, options).format(moment);
  } catch {
    return moment.toLocaleString();
  }
}

/** @param {Settings} settings */
function drawUpdatedAt(settings) {
  const iso = settings.updated_at || "";
  if (ui.updatedAt.getAttribute("datetime") === iso) return;
  ui.updatedAt.setAttribute("datetime", iso);
  ui.updatedAt.textContent = iso ? formatMoment(new Date(iso)) : text("never");
}

/**
 * @param {Settings} settings
 * @param {string[]} [changed]
 */
function render(settings, changed = []) {
  /** @type {NodeListOf<HTMLElement>} */
  const cells = ui.summary.querySelectorAll("[data-key]");
  for (const cell of cells) {
    const key = /** @type {string} */ (cell.dataset.key);
    drawValue(cell, valueOf(settings, key));
    if (changed.includes(key)) highlight(cell);
  }
  drawUpdatedAt(settings);
  if (!state.saving) setControl(settings.theme);
}

// --- the theme control -----------------------------------------------------------------

/** @param {string} theme */
function setControl(theme) {
  /** @type {HTMLInputElement | null} */
  const input = ui.picker.querySelector(`input[value="${theme}"]`);
  if (input) input.checked = true;
  updateSystemHint();
}

function chosenTheme() {
  /** @type {HTMLInputElement | null} */
  const input = ui.picker.querySelector("input:checked");
  return input ? input.value : null;
}

function updateSystemHint() {
  const isSystem = chosenTheme() === "system";
  ui.systemHint.hidden = !isSystem;
  if (isSystem) ui.systemHint.textContent = text(ui.prefersDark.matches ? "system-dark" : "system-light");
}

/** @returns {string} */
function confirmedTheme() {
  const { settings } = sync.getState();
  return settings ? settings.theme : /** @type {string} */ (document.documentElement.dataset.theme);
}

/** @param {string} theme */
function revertTo(theme) {
  setControl(theme);
  applyTheme(theme);
}

// Sends the latest choice until none is left: clicks during a save collapse into one more
// request with the last choice.
async function saveLatest() {
  let saved = null;
  while (state.desired !== null) {
    const wanted = state.desired;
    state.desired = null;
    if (wanted === confirmedTheme()) {
      saved = wanted;
      continue;
    }
    const result = await api.patchSettings({ theme: /** @type {Settings["theme"]} */ (wanted) });
    saved = result.settings.theme;
  }
  return saved;
}

/** @param {string} theme */
async function choose(theme) {
  state.desired = theme;
  applyTheme(theme); // optimistic: the page changes before the server answers
  updateSystemHint();
  clearNotice();
  if (state.saving) return; // the save under way sends the latest choice when it ends
  state.saving = true;
  showStatus("saving");
  try {
    const saved = await saveLatest();
    if (saved) showNotice(text("saved", { theme: label("theme", saved) }), "success", { transient: true });
  } catch (/** @type {any} */ error) {
    state.desired = null;
    state.saving = false;
    await saveFailed(error);
  } finally {
    state.saving = false;
    showStatus(sync.getState().status);
  }
}

async function resolveConflict() {
  // Another device wrote first: load what it saved, then say so.
  state.inConflict = true;
  try {
    await sync.refresh({ fresh: true });
  } finally {
    state.inConflict = false;
  }
  const { settings, status } = sync.getState();
  if (status !== "ok" || !settings) return false;
  revertTo(settings.theme);
  showNotice(text("conflict", { theme: label("theme", settings.theme) }), "info");
  return true;
}

/** @param {ApiError} error */
async function saveFailed(error) {
  if (error.status === 401) {
    revertTo(confirmedTheme());
    showSignedOut();
    return;
  }
  if (error.status === 412 && (await resolveConflict())) return;
  revertTo(confirmedTheme());
  const reason = error.unreachable ? text("unreachable") : error.detail || error.message;
  showNotice(text("save-failed", { reason }), "error");
}

// --- connection state ------------------------------------------------------------------

/** @param {SyncStatus | "saving"} status */
function showStatus(status) {
  const shown = state.saving ? "saving" : status;
  ui.statusBox.dataset.status = shown;
  ui.statusText.textContent = text(shown);
  ui.root.dataset.state = shown;
  ui.summary.setAttribute("aria-busy", String(shown === "loading"));
}

// Signed out in another tab or on another device: nothing here works until signing in
// again, so say so, with the way back, instead of offering a retry that cannot work.
function showSignedOut() {
  if (!ui.signedOut.hidden) return;
  ui.signedOut.hidden = false;
  ui.errorBox.hidden = true;
  /** @type {NodeListOf<HTMLElement>} */
  const logoutForms = document.querySelectorAll(".site-nav__logout");
  for (const element of logoutForms) element.hidden = true;
  ui.signedOut.focus();
}

/** @param {ApiError | null} error */
function showError(error) {
  const wasHidden = ui.errorBox.hidden;
  ui.errorTitle.textContent = text(state.loadedOnce ? "sync-failed" : "load-failed");
  ui.errorDetail.textContent =
    !error || error.unreachable ? text("unreachable") : error.detail || error.message;
  ui.errorBox.hidden = false;
  if (wasHidden) announce(`${ui.errorTitle.textContent}. ${ui.errorDetail.textContent}`);
}

/** @param {SettingsSyncDetail} detail */
function showSyncState({ status, error, checkedAt }) {
  if (error && error.status === 401) {
    showSignedOut();
    return;
  }
  showStatus(status);
  if (checkedAt) {
    ui.lastChecked.setAttribute("datetime", checkedAt.toISOString());
    ui.lastChecked.textContent = formatMoment(checkedAt, { date: false });
  }
  if (status === "ok") {
    state.loadedOnce = true;
    ui.errorBox.hidden = true;
  } else if (status === "offline" || status === "error") {
    showError(error);
  }
}

/** @param {CustomEvent<SettingsChangedDetail>} event */
function onSettingsChanged(event) {
  const { settings, changed, source } = event.detail;
  // A new language needs a new page; sync.js reloads it unless we stop it.
  if (changed.includes("locale") && (source === "tab" || source === "remote")) return;
  event.preventDefault();
  render(settings, source === "load" ? [] : changed);
  if ((source === "tab" || source === "remote") && !state.inConflict) {
    showNotice(text(source === "tab" ? "changed-tab" : "changed-remote"), "info", { transient: true });
  }
}

async function retry() {
  showStatus("loading");
  ui.retryButton.disabled = true;
  try {
    await sync.refresh({ fresh: true });
  } finally {
    ui.retryButton.disabled = false;
  }
}

function start() {
  ui.picker.addEventListener("change", (event) => {
    const target = /** @type {HTMLInputElement} */ (event.target);
    if (target.name === "theme") choose(target.value);
  });
  ui.prefersDark.addEventListener("change", updateSystemHint);
  document.addEventListener("settings-sync", (event) => showSyncState(event.detail));
  document.addEventListener("settings-changed", onSettingsChanged);
  ui.retryButton.addEventListener("click", retry);
  // sync.js started before us and may already have an answer.
  const current = sync.getState();
  if (current.settings) render(current.settings);
  showSyncState(current);
  updateSystemHint();
}
