// A show-password button after every password input of the sign-in, sign-up and password
// pages (see password_input in templates/macros/forms.html). Without script the inputs stay
// plain password inputs.
//
// The button keeps one label, "Show password", and says with aria-pressed whether the
// password shows: a toggle button whose label changed as well would announce its state twice.

const SVG = "http://www.w3.org/2000/svg";

function eyeIcon() {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", "password-field__icon");
  for (const d of ["M2 12s3.6-7 10-7 10 7 10 7-3.6 7-10 7S2 12 2 12z", "M12 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6z"]) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

function addToggle(field) {
  const input = field.querySelector("input[type=password]");
  if (!input || field.querySelector(".password-field__toggle")) return;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "button password-field__toggle";
  button.setAttribute("aria-pressed", "false");
  button.setAttribute("aria-controls", input.id);
  const label = document.createElement("span");
  label.textContent = field.dataset.passwordToggle;
  button.append(eyeIcon(), label);

  const show = (visible) => {
    input.type = visible ? "text" : "password";
    button.setAttribute("aria-pressed", String(visible));
  };
  button.addEventListener("click", () => {
    show(input.type === "password");
  });
  // Hidden again before it is sent or the page is left, so the browser never keeps it as
  // ordinary text (form history, a page restored from the back-forward cache).
  input.form?.addEventListener("submit", () => show(false));
  window.addEventListener("pagehide", () => show(false));
  input.after(button);
}

for (const field of document.querySelectorAll("[data-password-toggle]")) addToggle(field);
