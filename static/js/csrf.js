// The session's CSRF token, which the page carries in <meta name="csrf-token"> (the CSP
// forbids inline scripts, so it cannot be written into one). Every write sends it.

/** @returns {string} */
export function csrfToken() {
  /** @type {HTMLMetaElement | null} */
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}
