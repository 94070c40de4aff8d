// Sign-in, sign-up and password pages with script on: the error summary of a form that came
// back takes focus, its links focus their fields, and a sign-in pause counts down.

const summary = document.getElementById("error-summary");
const liveRegion = document.getElementById("live-region");

function focusSummary() {
  if (!summary) return;
  summary.focus();
  summary.addEventListener("click", (event) => {
    const link = event.target.closest("a[href^='#']");
    const input = link && document.getElementById(decodeURIComponent(link.hash.slice(1)));
    if (!input) return;
    event.preventDefault();
    // A fragment link only scrolls; focus the field too, with its label in view above it.
    const label = document.querySelector(`label[for="${CSS.escape(input.id)}"]`);
    (label || input).scrollIntoView({ block: "start" });
    input.focus({ preventScroll: true });
  });
}

function unitFormat(unit) {
  try {
    return new Intl.NumberFormat(document.documentElement.lang || undefined, {
      style: "unit",
      unit,
      unitDisplay: "long",
    });
  } catch {
    return null;
  }
}

// The server wrote "Please wait 30 seconds" (or "58 minutes", from two minutes on); the time in
// [data-retry-after] goes down to zero, worded by the browser's CLDR data in the page's
// language, then says the form can be sent again.
function countDown() {
  const time = document.querySelector("[data-retry-after]");
  if (!time) return;
  const notice = time.closest("[data-retry-done]");
  const seconds = Number.parseInt(time.dataset.retryAfter, 10);
  if (!notice || !(seconds > 0)) return;
  const formats = { minute: unitFormat("minute"), second: unitFormat("second") };
  const deadline = Date.now() + seconds * 1000;
  let shown = time.textContent;
  const tick = () => {
    // From the deadline, not by counting ticks: timers in a background tab run late.
    const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    if (left === 0) {
      window.clearInterval(timer);
      notice.textContent = notice.dataset.retryDone;
      // The notice itself is not live (it would speak at every tick); this says it once.
      if (liveRegion) liveRegion.textContent = notice.dataset.retryDone;
      return;
    }
    time.dataset.retryAfter = String(left);
    const [unit, amount] = left >= 120 ? ["minute", Math.ceil(left / 60)] : ["second", left];
    const text = formats[unit] ? formats[unit].format(amount) : shown.replace(/\d+/, String(amount));
    if (text !== shown) time.textContent = shown = text;
  };
  const timer = window.setInterval(tick, 250);
}

focusSummary();
countDown();
