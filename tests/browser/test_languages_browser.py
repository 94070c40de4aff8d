"""Each shipped language chosen through the settings page, in headless Chromium."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import LiveServer, run_axe, screenshot, sign_in

pytestmark = pytest.mark.browser

#: Per language: the page heading, the theme label and the save note as the catalogue has them.
EXPECTED = {
    "en": ("Settings", "Theme", "Changes are saved as you make them."),
    "de": ("Einstellungen", "Design", "Änderungen werden sofort gespeichert."),
    "fr": ("Paramètres", "Thème", "Vos modifications sont enregistrées au fur et à mesure."),
    "ja": ("設定", "テーマ", "変更はすぐに保存されます。"),
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
    expect(page.locator("html")).to_have_attribute("dir", "ltr")
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.locator("#setting-theme legend")).to_have_text(theme)
    expect(page.get_by_text(note, exact=True)).to_be_visible()
    expect(page.locator("#locale")).to_have_value(locale)


@pytest.mark.parametrize("locale", ["de", "fr", "ja"])
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


@pytest.mark.parametrize("locale", ["de", "fr", "ja"])
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


@pytest.mark.parametrize("locale", ["en", "de", "fr", "ja"])
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
