// The page's live region, the one way every script tells screen readers what happened.

const REPEAT_DELAY_MS = 50;
const AFTER_LOAD_MS = 400;

/** @param {string} message */
export function announce(message) {
  const region = document.getElementById("live-region");
  if (!region || !message) return;
  // Emptying first makes a repeated message count as a change.
  region.textContent = "";
  window.setTimeout(() => { region.textContent = message; }, REPEAT_DELAY_MS);
}

// A message the server put on the page (a flash after a save, an error summary) is already
// there when the page loads, so screen readers never hear it: say it again once loaded.
export function announceFlashes() {
  const messages = Array.from(document.querySelectorAll(".flashes .flash"))
    .map((element) => /** @type {string} */ (element.textContent).trim())
    .filter(Boolean);
  if (messages.length) window.setTimeout(() => announce(messages.join(" ")), AFTER_LOAD_MS);
}
