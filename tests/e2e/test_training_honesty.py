"""Issue 17 in a real Chromium: an annotator (logged in normally) fails a training round,
passes the next and reaches real items; a straight-liner is paused and the researcher
sees why on the campaign page."""

import pytest
from playwright.sync_api import expect

from accounts.services import user_create_with_role
from annotation.models import CampaignAnnotator
from annotation.services.campaigns import campaign_create
from annotation.services.membership import member_add
from tests.annotation.conftest import make_corpus
from tests.e2e.training import answer_training_item, gold_reference

pytestmark = pytest.mark.e2e

PASSWORD = "a-long-pass-123"


def log_in(page, live_server, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")


def test_an_annotator_fails_then_passes_training_and_reaches_real_items(
    live_server, page, tmp_path
):
    reference = gold_reference(tmp_path)
    campaign = campaign_create(
        corpus=make_corpus(80, name="teacher"),
        name="trained crowd",
        size=30,
        gold_share=0.2,
        seed=3,
        training_size=2,
        qualification_threshold=1.0,
        training_tries=2,
        gold_reference=reference,
    )
    user = user_create_with_role(username="ann", password=PASSWORD, role="annotator")
    member_add(campaign=campaign, annotator=user)

    log_in(page, live_server, "ann")
    page.goto(f"{live_server.url}/annotation/{campaign.pk}/judge/")
    card = page.locator("#judge-card")
    expect(page.locator("#guidelines")).to_have_attribute("open", "")  # first visit
    expect(card).to_contain_text("Training, round 1: item 1 of 2")
    page.locator("body").click(position={"x": 5, "y": 300})
    answer_training_item(page, right=False)
    page.keyboard.press("n")
    expect(card).to_contain_text("Training, round 1: item 2 of 2")
    answer_training_item(page, right=True)
    expect(card.locator("#training-outcome")).to_contain_text("another round")
    page.keyboard.press("n")
    expect(card).to_contain_text("Training, round 2: item 1 of 2")
    answer_training_item(page, right=True)
    page.keyboard.press("n")
    answer_training_item(page, right=True)
    expect(card.locator("#training-outcome")).to_contain_text("You passed the training")
    page.keyboard.press("n")
    expect(card.locator("input[name=assignment]")).to_be_attached()
    expect(card).to_contain_text("How often does this hold?")
    standing = CampaignAnnotator.objects.get(campaign=campaign, annotator=user)
    assert standing.qualified_at is not None and not standing.paused


def test_a_straight_liner_is_paused_and_the_researcher_sees_why(live_server, page):
    campaign = campaign_create(
        corpus=make_corpus(80, name="teacher"),
        name="honest crowd",
        size=40,
        gold_share=0.0,
        seed=4,
        straight_line_run=5,
    )
    user = user_create_with_role(username="liner", password=PASSWORD, role="annotator")
    user_create_with_role(username="res", password=PASSWORD, role="researcher")
    member_add(campaign=campaign, annotator=user)

    log_in(page, live_server, "liner")
    page.goto(f"{live_server.url}/annotation/{campaign.pk}/judge/")
    card = page.locator("#judge-card")
    page.locator("body").click(position={"x": 5, "y": 300})
    for _ in range(15):
        shown = card.get_attribute("data-assignment")
        if not shown:
            break
        page.keyboard.press("4")  # invalid, again and again
        expect(card).not_to_have_attribute("data-assignment", shown)
    expect(card).to_contain_text("paused for review (straight-lining")

    log_in(page, live_server, "res")
    page.goto(f"{live_server.url}/annotation/{campaign.pk}/")
    annotators = page.locator("#annotators")
    expect(annotators).to_contain_text("liner")
    expect(annotators).to_contain_text("straight-lining: the same answer (invalid)")
    expect(annotators.locator("button:has-text('Reinstate')")).to_be_visible()
