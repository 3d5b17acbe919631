"""A Prolific-style worker opens a join link in a real Chromium, consents, fails a round of
training and passes the next, judges a session with the keyboard and gets the completion
code; reopening the link resumes the
same annotator (no second account, no second judgment of an item)."""

import pytest
from playwright.sync_api import expect

from annotation.models import CampaignAnnotator, CrowdWorker, Judgment
from annotation.services.campaigns import campaign_create
from annotation.services.joining import join_link_create
from tests.annotation.conftest import make_corpus
from tests.e2e.training import answer_training_item, gold_reference

pytestmark = pytest.mark.e2e


def test_a_prolific_worker_joins_trains_judges_a_session_and_gets_the_code(
    live_server, page, tmp_path
):
    reference = gold_reference(tmp_path)
    campaign = campaign_create(
        corpus=make_corpus(40, name="teacher"),
        name="Everyday situations",
        size=20,
        gold_share=0.1,
        seed=3,
        instructions="Answer for most people in most situations.",
        training_size=2,
        qualification_threshold=1.0,
        training_tries=2,
        gold_reference=reference,
    )
    campaign.items_per_session = 3
    campaign.save(update_fields=["items_per_session"])
    link = join_link_create(campaign=campaign, platform="prolific", completion_code="C0MPLETE")
    url = (
        f"{live_server.url}/join/{link.token}/"
        "?PROLIFIC_PID=60f1e2d3c4b5a6978899aabb&STUDY_ID=st1&SESSION_ID=se1"
    )

    page.goto(url)
    expect(page.locator("#join")).to_contain_text("Answer for most people in most situations.")
    page.click("#consent")
    card = page.locator("#judge-card")
    expect(card).to_contain_text("Training, round 1: item 1 of 2")
    page.locator("body").click(position={"x": 5, "y": 300})  # focus the page, not a field
    answer_training_item(page, right=False)
    page.keyboard.press("n")
    answer_training_item(page, right=True)
    expect(card.locator("#training-outcome")).to_contain_text("another round")
    page.keyboard.press("n")
    answer_training_item(page, right=True)
    page.keyboard.press("n")
    answer_training_item(page, right=True)
    expect(card.locator("#training-outcome")).to_contain_text("You passed the training")
    page.keyboard.press("n")
    expect(card.locator("input[name=assignment]")).to_be_attached()

    for key in ("1", "2"):
        before = card.get_attribute("data-assignment")
        page.keyboard.press(key)
        expect(card).not_to_have_attribute("data-assignment", before)
    page.keyboard.press("3")
    expect(page.locator("#completion-code")).to_have_text("C0MPLETE")
    expect(card).to_contain_text("Prolific")

    worker = CrowdWorker.objects.get()
    assert worker.annotator.username == "prolific-60f1e2d3c4b5a6978899aabb"
    judged = set(Judgment.objects.filter(annotator=worker.annotator).values_list("item", flat=True))
    assert len(judged) == 3

    # Reopened (in a fresh browser, as after closing the tab): the same annotator resumes
    # with a new session, and never gets an item they judged.
    fresh = page.context.browser.new_context()
    try:
        again = fresh.new_page()
        again.goto(url.replace("se1", "se2"))
        again.click("#consent")
        expect(again.locator("#judge-card .judge-sentence")).to_be_visible()
        again.locator("body").click(position={"x": 5, "y": 300})
        again.keyboard.press("1")
        expect(again.locator("#judged-here")).to_have_text("4")
    finally:
        fresh.close()
    assert CrowdWorker.objects.count() == 1
    items = list(Judgment.objects.filter(annotator=worker.annotator).values_list("item", flat=True))
    assert len(items) == 4 == len(set(items))
    standing = CampaignAnnotator.objects.get(annotator=worker.annotator)
    assert standing.qualified_at is not None and standing.training_round == 1
    assert standing.completions == 1 and standing.platform_ids["session_id"] == "se2"
