// The time-zone picker with script on: a searchable list (an ARIA combobox) over the native
// select, which stays in the form, hidden, and is what the settings page saves. Typing and
// the arrow keys only move through the list; a zone is saved when it is picked (Enter, a
// click), never on a keystroke. Without script the select is the picker.

const MAX_SHOWN = 60;
const refocus = new Set();

// Each option reads "Japan Time (Tokyo) · UTC+09:00"; data-country names its country in the
// page's language, data-also the English names on a page in another language, data-aliases
// the legacy names of the zone (Asia/Calcutta), which browsers may still report.
function optionsOf(select) {
  return Array.from(select.options).map((option) => {
    const label = option.textContent.trim();
    const { country = "", also = "", aliases = "" } = option.dataset;
    const [, place = label, offset = ""] = label.match(/^(.*?)\s*·\s*(UTC\S*)$/) || [];
    const names = `${option.value} ${aliases}`.replaceAll("_", " ").replaceAll("/", " ");
    return {
      value: option.value,
      label,
      place,
      offset,
      country,
      region: option.parentElement?.label || "",
      search: `${label} ${country} ${also} ${names}`.toLowerCase(),
    };
  });
}

function matches(entry, words) {
  return words.every((word) => entry.search.includes(word));
}

export function enhance(select) {
  if (select.dataset.enhanced) return;
  select.dataset.enhanced = "true";
  const texts = select.closest(".setting")?.querySelector("[data-zone-picker-texts]")?.dataset || {};
  const entries = optionsOf(select);
  const id = select.id;

  const box = document.createElement("div");
  box.className = "zone-picker";
  const input = document.createElement("input");
  Object.assign(input, {
    type: "text",
    id: `${id}-search`,
    className: "field__input zone-picker__input",
    autocomplete: "off",
    spellcheck: false,
    placeholder: texts.placeholder || "",
  });
  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-expanded", "false");
  input.setAttribute("aria-controls", `${id}-listbox`);
  for (const name of ["aria-describedby", "aria-invalid"]) {
    if (select.hasAttribute(name)) input.setAttribute(name, select.getAttribute(name));
  }
  const list = document.createElement("div");
  list.className = "zone-picker__list";
  list.id = `${id}-listbox`;
  list.setAttribute("role", "listbox");
  list.hidden = true;
  const empty = document.createElement("p");
  empty.className = "zone-picker__empty";
  empty.textContent = texts.noMatch || "";
  empty.hidden = true;
  box.append(input, list, empty);
  select.after(box);
  select.hidden = true;
  const label = document.querySelector(`label[for="${id}"]`);
  if (label) {
    label.htmlFor = input.id;
    list.setAttribute("aria-labelledby", label.id || (label.id = `${id}-label`));
  }

  let shown = [];
  let active = -1;

  const chosenLabel = () => entries.find((entry) => entry.value === select.value)?.label || select.value;

  function setActive(index) {
    active = index;
    list.querySelectorAll("[role=option]").forEach((item, position) => {
      item.setAttribute("aria-selected", String(position === index));
      if (position === index) item.scrollIntoView({ block: "nearest" });
    });
    if (index >= 0) input.setAttribute("aria-activedescendant", `${id}-option-${index}`);
    else input.removeAttribute("aria-activedescendant");
  }

  function open(query) {
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    shown = (words.length ? entries.filter((entry) => matches(entry, words)) : entries).slice(0, MAX_SHOWN);
    // Grouped by region under a heading, as the select's optgroups are.
    const groups = [];
    shown.forEach((entry, index) => {
      let group = groups.at(-1);
      if (!group || group.dataset.region !== entry.region) {
        group = document.createElement("div");
        group.setAttribute("role", "group");
        group.dataset.region = entry.region;
        const heading = document.createElement("div");
        heading.id = `${id}-group-${groups.length}`;
        heading.className = "zone-picker__group";
        heading.setAttribute("role", "presentation");
        heading.textContent = entry.region;
        group.setAttribute("aria-labelledby", heading.id);
        group.append(heading);
        groups.push(group);
      }
      const item = document.createElement("div");
      item.id = `${id}-option-${index}`;
      item.setAttribute("role", "option");
      item.dataset.value = entry.value;
      const place = document.createElement("span");
      place.textContent = entry.place;
      const meta = document.createElement("span");
      meta.className = "zone-picker__meta";
      meta.textContent = [entry.country, entry.offset].filter(Boolean).join(" · ");
      item.append(place, meta);
      group.append(item);
    });
    list.replaceChildren(...groups);
    list.hidden = shown.length === 0;
    empty.hidden = shown.length > 0;
    input.setAttribute("aria-expanded", String(shown.length > 0));
    setActive(shown.length ? 0 : -1);
  }

  function close({ restore = true } = {}) {
    list.hidden = true;
    empty.hidden = true;
    input.setAttribute("aria-expanded", "false");
    setActive(-1);
    if (restore) input.value = chosenLabel();
  }

  function pick(entry) {
    close({ restore: false });
    input.value = entry.label;
    if (entry.value === select.value) return;
    select.value = entry.value;
    if (document.activeElement === input) refocus.add(input.id);
    select.dispatchEvent(new Event("change", { bubbles: true }));
  }

  input.value = chosenLabel();
  input.addEventListener("focus", () => input.select());
  input.addEventListener("input", () => open(input.value));
  input.addEventListener("keydown", (event) => {
    const expanded = !list.hidden;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!expanded) {
        open(input.value === chosenLabel() ? "" : input.value);
        return;
      }
      const step = event.key === "ArrowDown" ? 1 : -1;
      setActive(Math.min(Math.max(active + step, 0), shown.length - 1));
    } else if (event.key === "Enter") {
      // Never the whole form: only a pick saves.
      event.preventDefault();
      if (expanded && active >= 0) pick(shown[active]);
    } else if (event.key === "Escape" && (expanded || !empty.hidden)) {
      event.preventDefault();
      close();
    }
  });
  // A click keeps focus in the input, so the list does not close before the pick.
  list.addEventListener("mousedown", (event) => event.preventDefault());
  list.addEventListener("click", (event) => {
    const item = event.target.closest("[role=option]");
    if (item) pick(shown[Number(item.id.split("-").pop())]);
  });
  input.addEventListener("blur", () => close());
  // The device-zone suggestion sets the select directly.
  select.addEventListener("zone-picked", () => {
    input.value = chosenLabel();
    refocus.add(input.id);
  });

  if (refocus.delete(input.id)) input.focus();
}

export function enhanceAll(scope) {
  for (const select of scope.querySelectorAll?.("select[data-zone-picker]") || []) enhance(select);
}
