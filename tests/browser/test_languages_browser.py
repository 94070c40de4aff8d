"""Each shipped language chosen through the settings page, in headless Chromium."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import LiveServer, run_axe, save_settings, screenshot, sign_in
from tests.browser.test_experience_browser import stored

pytestmark = pytest.mark.browser

#: Per language: the page heading, the theme label and the save note as the catalogue has them.
EXPECTED = {
    "en": ("Settings", "Theme", "Changes are saved as you make them."),
    "de": ("Einstellungen", "Design", "Änderungen werden sofort gespeichert."),
    "fr": ("Paramètres", "Thème", "Vos modifications sont enregistrées au fur et à mesure."),
    "ja": ("設定", "テーマ", "変更はすぐに保存されます。"),
    "ar": ("الإعدادات", "المظهر", "تُحفظ التغييرات فور إجرائها."),
}

#: Whether an element is inside one clipped to nothing: text kept for screen readers only
#: (the live region, table captions), which has no box to spill out of.
VISUALLY_HIDDEN = """
  const visuallyHidden = (el) => {
    for (let node = el; node; node = node.parentElement) {
      if (getComputedStyle(node).clip === "rect(0px, 0px, 0px, 0px)") return true;
    }
    return false;
  };
"""

#: Elements whose content spills out of their box, and by how many pixels. The htmx
#: spinners (``id="<field>-spinner"``) are taken out while measuring: they are invisible
#: until a save is slow, and their rotation pokes a few pixels out of the theme cards in
#: every language.
OVERFLOWING = (
    """
() => {"""
    + VISUALLY_HIDDEN
    + """
  const spinners = [...document.querySelectorAll("[id$='-spinner']")];
  spinners.forEach((el) => { el.style.display = "none"; });
  const found = [...document.querySelectorAll("body *:not(select):not(option):not(optgroup)")]
    .filter((el) => {
      const style = getComputedStyle(el);
      if (style.display === "none" || style.visibility === "hidden") return false;
      if (el.closest("[hidden], template, noscript, svg") || visuallyHidden(el)) return false;
      return el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1
        && !["auto", "scroll"].includes(style.overflowX) && el.textContent.trim() !== "";
    })
    .map((el) => [`${el.tagName.toLowerCase()}.${el.className}`, el.scrollWidth - el.clientWidth]);
  spinners.forEach((el) => { el.style.display = ""; });
  return found;
}
"""
)


#: Visible boxes that cover part of another box neither contains: text-bearing elements and
#: controls (an invisible input stretched over its card, as the theme cards do, is left out).
OVERLAPPING = (
    """
() => {"""
    + VISUALLY_HIDDEN
    + """
  const spinners = [...document.querySelectorAll("[id$='-spinner']")];
  spinners.forEach((el) => { el.style.display = "none"; });
  const ownText = (el) =>
    [...el.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
  const boxes = [...document.querySelectorAll("body *")]
    .filter((el) => {
      if (el.closest("[hidden], template, noscript, svg, select")) return false;
      if (visuallyHidden(el)) return false;
      const style = getComputedStyle(el);
      if (style.display === "none" || style.visibility === "hidden" || style.opacity === "0") {
        return false;
      }
      return ownText(el) || el.matches("input, select, button, textarea");
    })
    .map((el) => [el, el.getBoundingClientRect()])
    .filter(([, r]) => r.width > 0 && r.height > 0);
  const found = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const [a, ra] = boxes[i];
      const [b, rb] = boxes[j];
      if (a.contains(b) || b.contains(a)) continue;
      const x = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
      const y = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
      if (x > 1 && y > 1) {
        const name = (el) =>
          `${el.tagName.toLowerCase()}.${el.className} "${el.textContent.trim().slice(0, 30)}"`;
        found.push([name(a), name(b)]);
      }
    }
  }
  spinners.forEach((el) => { el.style.display = ""; });
  return found;
}
"""
)

#: Words the browser had to split across two lines (``overflow-wrap: anywhere`` does that
#: to a word wider than its box): Latin-script words anywhere, and short runs of kana or
#: kanji in labels that should stay on one line (theme names, buttons, links).
BROKEN_WORDS = (
    r"""
() => {"""
    + VISUALLY_HIDDEN
    + r"""
  const latin = /[^\s\-\u3000-\u9fff\uff00-\uffef]+/g;
  const cjk = /[\u3040-\u30ff\u4e00-\u9fff]{2,8}/g;
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || !el.getClientRects().length) continue;
    if (el.closest("script, style, template, noscript, select, [hidden]") || visuallyHidden(el)) {
      continue;
    }
    const patterns = el.closest("#setting-theme label, button, a") ? [latin, cjk] : [latin];
    for (const pattern of patterns) {
      for (const match of node.textContent.matchAll(pattern)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const lines = new Set(
          [...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top))
        );
        if (lines.size > 1) found.push(match[0]);
      }
    }
  }
  return found;
}
"""
)


def assert_nothing_overflows(page: Page) -> None:
    """No text spills out of its box, and the page has no sideways scroll."""
    width = page.evaluate("document.documentElement.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page.evaluate(OVERFLOWING) == []


def assert_nothing_overlaps(page: Page) -> None:
    """No text or control is drawn over another one."""
    assert page.evaluate(OVERLAPPING) == []


def broken_words(page: Page) -> list[str]:
    """Words split across lines on the page, in document order."""
    return list(page.evaluate(BROKEN_WORDS))


def choose_language(page: Page, locale: str) -> None:
    """Pick ``locale`` in the language select (htmx) and wait for the page to reload in it."""
    with page.expect_navigation():
        page.locator("#locale").select_option(locale)
    expect(page.locator("html")).to_have_attribute("lang", locale)
    # Shown once script made the form save each change itself.
    expect(page.get_by_text(EXPECTED[locale][2], exact=True)).to_be_visible()


def assert_in_language(page: Page, locale: str) -> None:
    heading, theme, note = EXPECTED[locale]
    expect(page.locator("html")).to_have_attribute("lang", locale)
    expect(page.locator("html")).to_have_attribute("dir", "rtl" if locale == "ar" else "ltr")
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.locator("#setting-theme legend")).to_have_text(theme)
    expect(page.get_by_text(note, exact=True)).to_be_visible()
    expect(page.locator("#locale")).to_have_value(locale)


@pytest.mark.parametrize("locale", ["de", "fr", "ja", "ar"])
def test_language_switch_through_the_page(
    signed_in_page: Page, live_server: LiveServer, locale: str
) -> None:
    page = signed_in_page
    expect(page.locator("html")).to_have_attribute("lang", "en")
    choose_language(page, locale)
    assert_in_language(page, locale)
    # The flashed "Saved" is in the language just chosen.
    expect(page.locator("#flashes")).to_be_visible()
    expect(page.locator("#flashes")).not_to_have_text("Saved")

    page.reload()
    assert_in_language(page, locale)
    assert_nothing_overflows(page)
    assert broken_words(page) == []
    assert [violation["id"] for violation in run_axe(page)] == []
    path = screenshot(page, f"settings-{locale}")
    assert path.stat().st_size > 10_000

    # And back to English through the same select, whose label is now translated.
    choose_language(page, "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Settings")


@pytest.mark.parametrize("locale", ["de", "fr", "ja", "ar"])
def test_narrow_screen_in_each_language(
    live_server: LiveServer,
    browser_user: str,
    new_context: Callable[..., BrowserContext],
    locale: str,
) -> None:
    page = new_context(viewport={"width": 375, "height": 800}).new_page()
    sign_in(page, live_server.url, browser_user)
    choose_language(page, locale)
    page.reload()
    assert_in_language(page, locale)
    assert_nothing_overflows(page)
    screenshot(page, f"settings-{locale}-narrow")


@pytest.mark.parametrize("locale", ["en", "de", "fr", "ja", "ar"])
def test_narrow_screen_splits_no_word(
    live_server: LiveServer,
    browser_user: str,
    new_context: Callable[..., BrowserContext],
    locale: str,
) -> None:
    page = new_context(viewport={"width": 375, "height": 800}).new_page()
    sign_in(page, live_server.url, browser_user)
    if locale != "en":
        choose_language(page, locale)
        page.reload()
    assert broken_words(page) == []


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 1280])
def test_arabic_settings_page_is_mirrored_and_finished(
    live_server: LiveServer,
    live_app: Flask,
    browser_user: str,
    new_context: Callable[..., BrowserContext],
    theme: str,
    width: int,
) -> None:
    save_settings(
        live_app, browser_user, {"locale": "ar", "theme": theme, "timezone": "Asia/Riyadh"}
    )
    # A change in the history, so its table is on the page too.
    save_settings(live_app, browser_user, {"notifications.digest": "daily"}, source="page")
    page = new_context(viewport={"width": width, "height": 900}).new_page()
    sign_in(page, live_server.url, browser_user)
    assert_in_language(page, "ar")
    expect(page.locator("html")).to_have_attribute("data-theme", theme)
    # Mirrored: the form's labels start on the right, and so does the heading.
    heading = page.get_by_role("heading", level=1).bounding_box()
    main = page.locator("main").bounding_box()
    assert heading is not None and main is not None
    assert heading["x"] + heading["width"] > main["x"] + main["width"] - 80
    # The zone as people in Arabic know it, and Babel's Arabic date for "last saved".
    expect(page.get_by_role("combobox", name="المنطقة الزمنية")).to_have_value(
        "التوقيت العربي (الرياض) · UTC+03:00"
    )
    expect(page.get_by_text("آخر حفظ في")).to_be_visible()
    assert_nothing_overflows(page)
    assert_nothing_overlaps(page)
    assert broken_words(page) == []
    assert [violation["id"] for violation in run_axe(page)] == []
    name = f"settings-ar-{theme}" if width == 1280 else f"settings-ar-{theme}-narrow"
    assert screenshot(page, name).stat().st_size > 10_000


@pytest.fixture
def arabic_page(
    live_server: LiveServer,
    live_app: Flask,
    browser_user: str,
    new_context: Callable[..., BrowserContext],
) -> Page:
    """The signed-in user's settings page in Arabic, on a wide screen."""
    save_settings(live_app, browser_user, {"locale": "ar"})
    page = new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(page, live_server.url, browser_user)
    return page


def test_arabic_zone_picker_finds_cities_in_arabic_and_english(
    arabic_page: Page, live_app: Flask, browser_user: str
) -> None:
    page = arabic_page
    picker = page.get_by_role("combobox", name="المنطقة الزمنية")
    listbox = page.get_by_role("listbox")
    for query in ("طوكيو", "tokyo", "اليابان", "japan"):
        picker.fill(query)
        expect(listbox.get_by_role("option").first).to_contain_text("توقيت اليابان (طوكيو)")
    # Matches are grouped under their region, and the open list is accessible.
    expect(listbox.get_by_role("group", name="آسيا")).to_be_visible()
    assert [violation["id"] for violation in run_axe(page)] == []
    # A legacy name finds its zone too: Calcutta is Kolkata.
    picker.fill("calcutta")
    expect(listbox.get_by_role("option")).to_have_count(1)
    expect(listbox.get_by_role("option").first).to_contain_text("توقيت الهند")
    screenshot(page, "zone-picker-ar")
    with page.expect_response(lambda r: r.url.endswith("/settings/timezone")):
        page.keyboard.press("Enter")
    assert stored(live_app, browser_user)["timezone"] == "Asia/Kolkata"


def test_file_picker_speaks_the_page_language(arabic_page: Page) -> None:
    """Browsers name a file input's button in their own language; the page names it in its."""
    page = arabic_page
    card = page.locator("#transfer")
    expect(card.get_by_role("button", name="اختيار ملف")).to_be_visible()
    expect(card.locator("[data-file-name]")).to_have_text("لم يتم اختيار أي ملف")
    # The browser's own control, which speaks the browser's language, is out of sight.
    expect(page.locator("#import-file")).to_have_attribute("aria-hidden", "true")
    box = page.locator("#import-file").bounding_box()
    assert box is not None
    assert box["width"] <= 1
    assert box["height"] <= 1
    page.set_input_files(
        "#import-file",
        files=[{"name": "إعداداتي.json", "mimeType": "application/json", "buffer": b"{}"}],
    )
    expect(card.locator("[data-file-name]")).to_have_text("إعداداتي.json")
    assert [violation["id"] for violation in run_axe(page)] == []
    # The button opens the browser's own file dialog.
    with page.expect_file_chooser() as chooser:
        card.get_by_role("button", name="اختيار ملف").click()
    assert chooser.value.element.get_attribute("id") == "import-file"


@pytest.mark.parametrize("width", [375, 1280])
def test_arabic_dashboard_is_mirrored_and_finished(
    live_server: LiveServer,
    live_app: Flask,
    browser_user: str,
    new_context: Callable[..., BrowserContext],
    width: int,
) -> None:
    save_settings(live_app, browser_user, {"locale": "ar", "timezone": "Africa/Cairo"})
    page = new_context(viewport={"width": width, "height": 900}).new_page()
    sign_in(page, live_server.url, browser_user)
    page.goto(f"{live_server.url}/dashboard")
    expect(page.locator("#sync-status")).to_have_attribute("data-status", "ok")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("#settings-summary [data-key=timezone]")).to_contain_text("القاهرة")
    assert_nothing_overflows(page)
    assert_nothing_overlaps(page)
    assert [violation["id"] for violation in run_axe(page)] == []
    screenshot(page, f"dashboard-ar-{width}")
