// The dashboard: shows the settings from the API, and changes the theme optimistically.
// sync.js keeps the data current and tells us about every change; this file only draws it.
// Every string it shows comes from the page (<template id="dashboard-messages">), so the
// server translates them.

import * as api from "./api.js";
import * as sync from "./sync.js";
import { applyTheme } from "./theme.js";

const NOTICE_MS = 6000;

const root = document.getElementById("dashboard");
if (root) {
  // Its writes show in the history as made on the dashboard.
  api.identify("dashboard");
  start(root);
}

function start(root) {
  const $ = (id) => document.getElementById(id);
  const labels = JSON.parse(root.dataset.labels || "{}");
  const messages = $("dashboard-messages").content;
  const statusBox = $("sync-status");
  const statusText = $("sync-status-text");
  const errorBox = $("dashboard-error");
  const errorTitle = $("dashboard-error-title");
  const errorDetail = $("dashboard-error-detail");
  const retryButton = $("dashboard-retry");
  const picker = $("theme-picker");
  const systemHint = $("system-hint");
  const notice = $("theme-message");
  const summary = $("settings-summary");
  const updatedAt = $("updated-at");
  const lastChecked = $("last-checked");
  const liveRegion = $("live-region");
  const prefersDark = window.matchMedia("(prefers-color-scheme: dark)");

  let loadedOnce = false;
  let saving = false;
  let desired = null;
  let inConflict = false;
  let noticeTimer = null;

  function text(key, values = {}) {
    const element = messages.querySelector(`[data-message="${key}"]`);
    let result = element ? element.textContent.trim() : key;
    for (const [name, value] of Object.entries(values)) result = result.replace(`{${name}}`, value);
    return result;
  }

  function label(key, value) {
    return (labels[key] && labels[key][value]) || String(value);
  }

  function announce(message) {
    // Clearing first makes a repeated message be read again.
    liveRegion.textContent = "";
    window.setTimeout(() => {
      liveRegion.textContent = message;
    }, 50);
  }

  function showNotice(message, kind, { transient = false } = {}) {
    window.clearTimeout(noticeTimer);
    notice.textContent = message;
    notice.dataset.kind = kind;
    notice.hidden = false;
    announce(message);
    if (transient) noticeTimer = window.setTimeout(clearNotice, NOTICE_MS);
  }

  function clearNotice() {
    window.clearTimeout(noticeTimer);
    notice.hidden = true;
    notice.textContent = "";
  }

  // --- drawing the settings -----------------------------------------------------------

  function setValue(key, content, changed) {
    const cell = summary.querySelector(`[data-key="${key}"]`);
    if (!cell) return;
    const badge = cell.querySelector(".toggle-badge");
    if (typeof content === "boolean" && badge) {
      badge.dataset.on = String(content);
      badge.textContent = text(content ? "on" : "off");
    } else if (cell.textContent !== content) {
      cell.textContent = content;
    }
    if (changed.includes(key)) {
      const row = cell.closest(".summary__row");
      row.classList.remove("is-updated");
      void row.offsetWidth; // restart the highlight animation
      row.classList.add("is-updated");
    }
  }

  // In the user's language and time zone, as the server renders "last saved".
  function formatMoment(moment, { date = true } = {}) {
    const { settings } = sync.getState();
    const options = { timeStyle: "medium", timeZone: settings ? settings.timezone : undefined };
    if (date) options.dateStyle = "medium";
    try {
      return new Intl.DateTimeFormat(document.documentElement.lang || undefined, options).format(moment);
    } catch {
      return moment.toLocaleString();
    }
  }

  function render(settings, changed = []) {
    const notifications = settings.notifications || {};
    setValue("theme", label("theme", settings.theme), changed);
    setValue("locale", label("locale", settings.locale), changed);
    setValue("timezone", label("timezone", settings.timezone), changed);
    setValue("notifications.email", Boolean(notifications.email), changed);
    setValue("notifications.push", Boolean(notifications.push), changed);
    setValue("notifications.digest", label("notifications.digest", notifications.digest), changed);
    const iso = settings.updated_at || "";
    if (updatedAt.getAttribute("datetime") !== iso) {
      updatedAt.setAttribute("datetime", iso);
      updatedAt.textContent = iso ? formatMoment(new Date(iso)) : text("never");
    }
    if (!saving) setControl(settings.theme);
  }

  // --- the theme control --------------------------------------------------------------

  function setControl(theme) {
    const input = picker.querySelector(`input[value="${theme}"]`);
    if (input) input.checked = true;
    updateSystemHint();
  }

  function chosenTheme() {
    const input = picker.querySelector("input:checked");
    return input ? input.value : null;
  }

  function updateSystemHint() {
    const isSystem = chosenTheme() === "system";
    systemHint.hidden = !isSystem;
    if (isSystem) systemHint.textContent = text(prefersDark.matches ? "system-dark" : "system-light");
  }

  function confirmedTheme() {
    const { settings } = sync.getState();
    return settings ? settings.theme : document.documentElement.dataset.theme;
  }

  function revertTo(theme) {
    setControl(theme);
    applyTheme(theme);
  }

  async function choose(theme) {
    desired = theme;
    applyTheme(theme); // optimistic: the page changes before the server answers
    updateSystemHint();
    clearNotice();
    if (saving) return; // the save under way sends the latest choice when it ends
    saving = true;
    showStatus("saving");
    let saved = null;
    try {
      // Clicks during a save collapse into one more request with the last choice.
      while (desired !== null) {
        const wanted = desired;
        desired = null;
        if (wanted === confirmedTheme()) {
          saved = wanted;
          continue;
        }
        const result = await api.patchSettings({ theme: wanted });
        saved = result.settings.theme;
      }
      if (saved) showNotice(text("saved", { theme: label("theme", saved) }), "success", { transient: true });
    } catch (error) {
      desired = null;
      saving = false;
      await saveFailed(error);
    } finally {
      saving = false;
      showStatus(sync.getState().status);
    }
  }

  async function saveFailed(error) {
    if (error.status === 401) {
      revertTo(confirmedTheme());
      showSignedOut();
      return;
    }
    if (error.status === 412) {
      // Another device wrote first: load what it saved, then say so.
      inConflict = true;
      try {
        await sync.refresh({ fresh: true });
      } finally {
        inConflict = false;
      }
      const { settings, status } = sync.getState();
      if (status === "ok" && settings) {
        revertTo(settings.theme);
        showNotice(text("conflict", { theme: label("theme", settings.theme) }), "info");
        return;
      }
    }
    revertTo(confirmedTheme());
    const reason = error.unreachable ? text("unreachable") : error.detail || error.message;
    showNotice(text("save-failed", { reason }), "error");
  }

  picker.addEventListener("change", (event) => {
    if (event.target.name === "theme") choose(event.target.value);
  });
  prefersDark.addEventListener("change", updateSystemHint);

  // --- connection state ---------------------------------------------------------------

  function showStatus(status) {
    const shown = saving ? "saving" : status;
    statusBox.dataset.status = shown;
    statusText.textContent = text(shown);
    root.dataset.state = shown;
    summary.setAttribute("aria-busy", String(shown === "loading"));
  }

  // Signed out in another tab or on another device: nothing here works until signing in
  // again, so say so, with the way back, instead of offering a retry that cannot work.
  function showSignedOut() {
    const banner = $("dashboard-signed-out");
    if (!banner.hidden) return;
    banner.hidden = false;
    errorBox.hidden = true;
    for (const element of document.querySelectorAll(".site-nav__logout")) element.hidden = true;
    banner.focus();
  }

  function showSyncState({ status, error, checkedAt }) {
    if (error && error.status === 401) {
      showSignedOut();
      return;
    }
    showStatus(status);
    if (checkedAt) {
      lastChecked.setAttribute("datetime", checkedAt.toISOString());
      lastChecked.textContent = formatMoment(checkedAt, { date: false });
    }
    if (status === "ok") {
      loadedOnce = true;
      errorBox.hidden = true;
      return;
    }
    if (status === "offline" || status === "error") {
      const wasHidden = errorBox.hidden;
      errorTitle.textContent = text(loadedOnce ? "sync-failed" : "load-failed");
      errorDetail.textContent =
        !error || error.unreachable ? text("unreachable") : error.detail || error.message;
      errorBox.hidden = false;
      if (wasHidden) announce(`${errorTitle.textContent}. ${errorDetail.textContent}`);
    }
  }

  document.addEventListener("settings-sync", (event) => showSyncState(event.detail));

  document.addEventListener("settings-changed", (event) => {
    const { settings, changed, source } = event.detail;
    // A new language needs a new page; sync.js reloads it unless we stop it.
    if (changed.includes("locale") && (source === "tab" || source === "remote")) return;
    event.preventDefault();
    render(settings, source === "load" ? [] : changed);
    if ((source === "tab" || source === "remote") && !inConflict) {
      showNotice(text(source === "tab" ? "changed-tab" : "changed-remote"), "info", { transient: true });
    }
  });

  retryButton.addEventListener("click", async () => {
    showStatus("loading");
    retryButton.disabled = true;
    try {
      await sync.refresh({ fresh: true });
    } finally {
      retryButton.disabled = false;
    }
  });

  // sync.js started before us and may already have an answer.
  const state = sync.getState();
  if (state.settings) render(state.settings);
  showSyncState(state);
  updateSystemHint();
}
