// The settings page with script on: htmx saves each control as it changes (see
// templates/settings/_field.html); this module adds what markup alone cannot do.

const form = document.querySelector(".settings-form");
const csrfMeta = document.querySelector('meta[name="csrf-token"]');
const liveRegion = document.getElementById("live-region");

// What each control showed after the server last rendered it, to put back when a save fails.
const serverState = new WeakMap();

function controls(root) {
  return Array.from(root.querySelectorAll("input:not([type=hidden]), select"));
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
}

function announce(message) {
  // Emptying first makes a repeated message count as a change to screen readers.
  liveRegion.textContent = "";
  window.setTimeout(() => { liveRegion.textContent = message; }, 50);
}

function showStatus(root, message) {
  const status = root.querySelector("[data-setting-status]");
  if (!status) return;
  status.textContent = message;
  status.hidden = !message;
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
  const zone = deviceZone();
  const offered = zone && Array.from(select.options).some((option) => option.value === zone);
  if (!offered || select.value === zone) {
    box.hidden = true;
    return;
  }
  box.querySelector("[data-zone-name]").textContent = zone.replaceAll("_", " ");
  const button = box.querySelector("[data-zone-suggestion-button]");
  box.hidden = false;
  // htmx:load also fires for the whole body once, after this module's first pass.
  if (button.dataset.bound) return;
  button.dataset.bound = "true";
  button.addEventListener("click", () => {
    select.value = zone;
    // The select keeps focus across the swap (htmx restores it by id); the button goes away.
    select.focus();
    select.dispatchEvent(new Event("change", { bubbles: true }));
  });
}

function setUp(scope) {
  const roots = scope.matches?.(".setting") ? [scope] : scope.querySelectorAll?.(".setting") || [];
  for (const root of roots) {
    remember(root);
    suggestZone(root);
  }
}

function settingOf(event) {
  const elt = event.detail && event.detail.elt;
  return elt && elt.closest ? elt.closest(".setting") : null;
}

if (form && window.htmx) {
  form.classList.add("settings-form--live");
  setUp(document);

  document.body.addEventListener("htmx:load", (event) => setUp(event.target));

  document.body.addEventListener("htmx:configRequest", (event) => {
    if (csrfMeta) event.detail.headers["X-CSRFToken"] = csrfMeta.content;
  });

  document.body.addEventListener("htmx:beforeRequest", (event) => {
    const root = settingOf(event);
    if (root) showStatus(root, "");
  });

  document.body.addEventListener("htmx:beforeSwap", (event) => {
    const { xhr } = event.detail;
    if (xhr.status === 422) {
      // A rejected value: the fragment shows the control as stored, with the reason.
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    } else if (xhr.status >= 400 && xhr.getResponseHeader("HX-Retarget")) {
      // Other errors are written for the live region (app/errors.py); still an error below.
      event.detail.shouldSwap = true;
    }
  });

  document.body.addEventListener("htmx:responseError", (event) => {
    const root = settingOf(event);
    if (!root) return;
    restore(root);
    const { xhr } = event.detail;
    const sent = xhr.getResponseHeader("HX-Retarget")
      ? new DOMParser().parseFromString(xhr.responseText, "text/html").body.textContent.trim()
      : "";
    const message = sent || form.dataset.messageFailed;
    showStatus(root, message);
    if (!sent) announce(message);
  });

  document.body.addEventListener("htmx:sendError", (event) => {
    const root = settingOf(event);
    if (!root) return;
    restore(root);
    showStatus(root, form.dataset.messageNetwork);
    announce(form.dataset.messageNetwork);
  });
}
