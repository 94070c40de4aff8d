// Applies a theme change to the open page at once. The server renders data-theme, so a
// page never loads in the wrong theme; this only reacts to changes made while it is open.

const root = document.documentElement;
/** @type {HTMLMetaElement | null} */
const colorScheme = document.querySelector('meta[name="color-scheme"]');

// The themes the registry allows, as the server wrote them on <html data-themes>.
const themes = (root.dataset.themes || "").split(" ").filter(Boolean);

/** @param {string} theme */
export function applyTheme(theme) {
  if (!themes.includes(theme)) return;
  root.dataset.theme = theme;
  if (colorScheme) {
    colorScheme.content = theme === "system" ? "light dark" : theme;
  }
}

// The settings page's htmx responses announce a saved theme through HX-Trigger.
document.body.addEventListener("settings-saved", (event) => {
  const theme = event.detail && event.detail.theme;
  if (theme) applyTheme(theme);
});
