"""An annotator judges triples in a real Chromium with the keyboard alone."""

import pytest
from playwright.sync_api import expect

from accounts.services import user_create_with_role
from annotation.models import Judgment
from annotation.services.campaigns import campaign_create
from annotation.services.membership import member_add
from tests.annotation.conftest import make_corpus

pytestmark = pytest.mark.e2e


def test_an_annotator_judges_five_triples_with_the_keyboard(live_server, page, tmp_path):
    campaign = campaign_create(
        corpus=make_corpus(40, name="teacher"),
        name="xNeed and friends, round 1",
        size=20,
        gold_share=0.0,
        seed=3,
        instructions="Answer for most people in most situations.",
    )
    user = user_create_with_role(username="ann", password="a-long-pass-123", role="annotator")
    member_add(campaign=campaign, annotator=user)

    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "ann")
    page.fill("input[name=password]", "a-long-pass-123")
    page.click("button:has-text('Log in')")
    expect(page.locator("body")).to_contain_text("xNeed and friends, round 1")
    page.click("a:has-text('Start')")
    card = page.locator("#judge-card")
    expect(card.locator(".judge-sentence")).to_be_visible()
    page.locator("body").click(position={"x": 5, "y": 300})  # focus the page, not a field

    def shown() -> str:
        value = card.get_attribute("data-assignment")
        assert value, "no item shown"
        return value

    def press(key: str, expect_shown: str | None = None) -> str:
        """Press a key, wait for the card htmx swaps in (a new item, or the one named)."""
        before = shown()
        page.keyboard.press(key)
        if expect_shown is None:
            expect(card).not_to_have_attribute("data-assignment", before)
        else:
            expect(card).to_have_attribute("data-assignment", expect_shown)
        return shown()

    page.evaluate("window.stillTheSamePage = true")  # gone if anything reloads the page
    press("1")  # always/often
    press("2")  # sometimes/likely
    third = shown()
    press("3")  # farfetched/never
    press("u", expect_shown=third)  # undo: the third triple is back
    expect(card).to_contain_text("taken back")
    press("3")  # answered again
    press("4")  # invalid
    page.keyboard.press("f")  # flag the next one
    expect(page.locator("#flag")).to_be_checked()
    press("1")
    expect(card.locator("#judged-here")).to_have_text("5")
    expect(card).to_contain_text("Saved: always/often, flagged as offensive.")
    assert page.evaluate("window.stillTheSamePage === true")  # htmx swapped cards, no page load

    judgments = list(Judgment.objects.filter(campaign=campaign, annotator=user).order_by("pk"))
    assert [j.value for j in judgments] == [2, 1, -1, -2, 2]
    assert [j.flagged for j in judgments] == [False, False, False, False, True]

    # The guidelines were open on the first visit (nothing judged yet); `g` closes and
    # opens them.
    page.keyboard.press("g")
    expect(page.locator("#guidelines")).not_to_have_attribute("open", "")
    page.keyboard.press("g")
    expect(page.locator("#guidelines")).to_have_attribute("open", "")
    # The page renders whole (docs/screenshot-annotate.png comes from `make screenshots`).
    shot = tmp_path / "annotate.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
