// The settings page with script on: htmx saves each control as it changes (see
// templates/settings/_field.html); this module adds what markup alone cannot do.

import { announce, announceFlashes } from "./announce.js";
import { csrfToken } from "./csrf.js";
import { applyTheme } from "./theme.js";
import { enhanceAll } from "./zone-picker.js";

const form = document.querySelector(".settings-form");
const SAVED_VISIBLE_MS = 4000;
// Where focus goes back to after a change that reloads the page (a new language).
const FOCUS_AFTER_RELOAD = "settings:focus-after-reload";

// What each control showed after the server last rendered it, to put back when a save fails.
const serverState = new WeakMap();
// What the request in flight for a setting sent, to tell whether the person chose again.
const sentValue = new WeakMap();

function controls(root) {
  return Array.from(root.querySelectorAll("input:not([type=hidden]), select"));
}

function fieldName(root) {
  return root.id.replace(/^setting-/, "");
}

// The value a setting's control holds now, as the form would send it.
function currentValue(root) {
  const name = fieldName(root);
  const checked = root.querySelector(`input[name="${name}"][type=radio]:checked`);
  if (checked) return checked.value;
  const box = root.querySelector(`input[name="${name}"][type=checkbox]`);
  if (box) return box.checked ? box.value : "";
  const select = root.querySelector(`select[name="${name}"]`);
  return select ? select.value : "";
}

function remember(root) {
  serverState.set(
    root,
    controls(root).map((control) => [
      control,
      control.type === "checkbox" || control.type === "radio" ? control.checked : control.value,
    ]),
  );
}

function restore(root) {
  for (const [control, value] of serverState.get(root) || []) {
    if (typeof value === "boolean") control.checked = value;
    else control.value = value;
  }
  if (fieldName(root) === "theme") applyTheme(currentValue(root));
}

function showStatus(root, message) {
  const status = root.querySelector("[data-setting-status]");
  if (!status) return;
  status.textContent = message;
  status.hidden = !message;
}

// "Saved" beside the control, for a moment; the live region says it as well.
function fadeSaved(root) {
  const status = root.querySelector("[data-setting-status][data-transient]");
  if (!status) return;
  window.setTimeout(() => status.classList.add("setting__status--fading"), SAVED_VISIBLE_MS);
  status.addEventListener("transitionend", () => { status.hidden = true; }, { once: true });
}

function deviceZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch {
    return "";
  }
}

// Offer the browser's zone as a one-click choice when it is known and not already chosen.
function suggestZone(root) {
  const box = root.querySelector("[data-zone-suggestion]");
  const select = root.querySelector("select");
  if (!box || !select) return;
  const reported = deviceZone();
  // A browser may report a legacy name (Asia/Calcutta): the option of its canonical zone says so.
  const option =
    reported &&
    Array.from(select.options).find(
      (candidate) =>
        candidate.value === reported || (candidate.dataset.aliases || "").split(" ").includes(reported),
    );
  const zone = option?.value;
  if (!option || select.value === zone) {
    box.hidden = true;
    return;
  }
  box.querySelector("[data-zone-name]").textContent = option.textContent.trim();
  const button = box.querySelector("[data-zone-suggestion-button]");
  box.hidden = false;
  // htmx:load also fires for the whole body once, after this module's first pass.
  if (button.dataset.bound) return;
  button.dataset.bound = "true";
  button.addEventListener("click", () => {
    select.value = zone;
    select.dispatchEvent(new CustomEvent("zone-picked"));
    select.dispatchEvent(new Event("change", { bubbles: true }));
  });
}

function setUp(scope) {
  const roots = scope.matches?.(".setting") ? [scope] : scope.querySelectorAll?.(".setting") || [];
  for (const root of roots) {
    remember(root);
    enhanceAll(root);
    suggestZone(root);
    fadeSaved(root);
  }
}

function settingOf(event) {
  const elt = event.detail && event.detail.elt;
  return elt && elt.closest ? elt.closest(".setting") : null;
}

// Whether the person chose again while the save of ``root`` was on its way.
function choseAgain(root) {
  return sentValue.has(root) && sentValue.get(root) !== currentValue(root);
}

function focusAfterReload() {
  const id = window.sessionStorage.getItem(FOCUS_AFTER_RELOAD);
  if (!id) return;
  window.sessionStorage.removeItem(FOCUS_AFTER_RELOAD);
  document.getElementById(id)?.focus();
}

// A file input names its button and its empty state in the browser's language, not the page's:
// with script it hides behind a button and a file name in the page's language.
function enhanceFilePickers(scope) {
  const fields = scope.matches?.("[data-file-field]")
    ? [scope]
    : scope.querySelectorAll?.("[data-file-field]") || [];
  for (const field of fields) {
    if (field.dataset.enhanced) continue;
    field.dataset.enhanced = "true";
    const input = field.querySelector("input[type=file]");
    const name = field.querySelector("[data-file-name]");
    // Out of sight, of the tab order and of the accessibility tree: the button stands in.
    input.classList.add("visually-hidden");
    input.tabIndex = -1;
    input.setAttribute("aria-hidden", "true");
    field.querySelector("[data-file-picker]").hidden = false;
    field.querySelector("[data-file-choose]").addEventListener("click", () => input.click());
    input.addEventListener("change", () => {
      name.textContent = input.files[0]?.name || name.dataset.empty;
    });
  }
}

enhanceFilePickers(document);
document.body.addEventListener("htmx:load", (event) => enhanceFilePickers(event.target));

if (form && window.htmx) {
  form.classList.add("settings-form--live");
  setUp(document);
  focusAfterReload();

  // Enter in a switch or a radio group would submit the whole form (and reload the page);
  // every control saves itself, so it does nothing here.
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target.matches("input[type=checkbox], input[type=radio]")) {
      event.preventDefault();
    }
  });

  document.body.addEventListener("htmx:load", (event) => setUp(event.target));

  // The page takes a chosen theme at once, before the server has answered.
  form.addEventListener("change", (event) => {
    if (event.target.name === "theme") applyTheme(event.target.value);
  });

  document.body.addEventListener("htmx:configRequest", (event) => {
    event.detail.headers["X-CSRFToken"] = csrfToken();
    const root = settingOf(event);
    if (!root) return;
    sentValue.set(root, currentValue(root));
    if (fieldName(root) === "locale") {
      // The answer reloads the page in the new language; come back to this control.
      window.sessionStorage.setItem(FOCUS_AFTER_RELOAD, root.querySelector("select").id);
    }
  });

  document.body.addEventListener("htmx:beforeRequest", (event) => {
    const root = settingOf(event);
    if (root) showStatus(root, "");
  });

  // The answer to a save that the person has overtaken (a second choice while it was on its
  // way) must not draw the older value: its events are stopped before theme.js restyles the
  // page, its fragment is not swapped in, and the newest choice is sent instead.
  document.addEventListener(
    "settings-saved",
    (event) => {
      const root = event.target.closest?.(".setting");
      if (root && choseAgain(root)) event.stopImmediatePropagation();
    },
    true,
  );

  document.body.addEventListener("htmx:beforeSwap", (event) => {
    const { xhr } = event.detail;
    const root = settingOf(event);
    if (root && xhr.status === 200 && choseAgain(root)) {
      event.detail.shouldSwap = false;
      return;
    }
    if (xhr.status === 422 || (xhr.status === 413 && event.detail.target.id === "transfer")) {
      // A rejected value: the fragment shows the control as stored, or the import card
      // says what is wrong with the file.
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    } else if (xhr.status >= 400 && xhr.getResponseHeader("HX-Retarget")) {
      // Other errors are written for the live region or the session banner
      // (app/errors.py); still an error below.
      event.detail.shouldSwap = true;
    }
  });

  document.body.addEventListener("htmx:afterRequest", (event) => {
    const root = settingOf(event);
    if (!root || !event.detail.successful) return;
    if (choseAgain(root)) {
      // hx-sync queues this behind the request that is ending, and keeps only the last.
      window.htmx.trigger(root, "change");
    } else {
      sentValue.delete(root);
    }
  });

  document.body.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target.id === "transfer") {
      // The card was replaced around the focused button: focus what it now says.
      document.querySelector("#transfer [data-focus-after-swap]")?.focus();
    }
  });

  document.body.addEventListener("htmx:responseError", (event) => {
    const root = settingOf(event);
    if (!root) return;
    sentValue.delete(root);
    restore(root);
    const { xhr } = event.detail;
    const retarget = xhr.getResponseHeader("HX-Retarget");
    if (retarget === "#session-banner") {
      document.getElementById("session-banner")?.focus();
      return;
    }
    const sent = retarget
      ? new DOMParser().parseFromString(xhr.responseText, "text/html").body.textContent.trim()
      : "";
    const message = sent || form.dataset.messageFailed;
    showStatus(root, message);
    if (!sent) announce(message);
  });

  document.body.addEventListener("htmx:sendError", (event) => {
    const root = settingOf(event);
    if (!root) return;
    sentValue.delete(root);
    restore(root);
    showStatus(root, form.dataset.messageNetwork);
    announce(form.dataset.messageNetwork);
  });
}

announceFlashes();
