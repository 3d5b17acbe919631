"""A researcher reviews a campaign in a real Chromium: filters to the disagreements,
adjudicates an item, and the aggregated export and the critic's training labels carry the
final label."""

import csv
import re

import pytest
from playwright.sync_api import expect

from accounts.services import user_create_with_role
from annotation.models import Item
from annotation.services.aggregation import campaign_aggregate
from annotation.services.campaigns import campaign_create
from annotation.services.judgments import judgment_submit
from annotation.services.leasing import assignment_next
from annotation.services.membership import member_add
from critic.labels import corpus_labels
from tests.annotation.conftest import make_corpus

pytestmark = pytest.mark.e2e


def test_a_researcher_adjudicates_a_disagreement(live_server, page, tmp_path, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    campaign = campaign_create(
        corpus=make_corpus(40), name="round one", size=6, gold_share=0.0, seed=2
    )
    items = list(Item.objects.filter(campaign=campaign).order_by("position"))
    split = items[2]  # two of three say acceptable, one says invalid
    people = [
        user_create_with_role(username=f"judge-{n}", password="a-long-pass-123", role="annotator")
        for n in range(3)
    ]
    for who, person in enumerate(people):
        member_add(campaign=campaign, annotator=person)
        while lease := assignment_next(campaign=campaign, annotator=person):
            value = -2 if (lease.item_id == split.pk and who == 2) else 2
            judgment_submit(assignment_id=lease.pk, annotator=person, value=value)
    campaign_aggregate(campaign=campaign)
    split.refresh_from_db()
    assert split.majority is True
    learning = corpus_labels(corpus_id=campaign.corpus_id).learning
    assert learning.labels[learning.triple_ids == split.triple_id].tolist() == [1]
    user_create_with_role(username="res", password="a-long-pass-123", role="researcher")

    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "res")
    page.fill("input[name=password]", "a-long-pass-123")
    page.click("button:has-text('Log in')")
    page.goto(f"{live_server.url}/annotation/{campaign.pk}/")
    page.click("a:has-text('Review')")
    page.wait_for_url(f"**/annotation/{campaign.pk}/review/")  # loaded: htmx is set up
    expect(page.locator("h1")).to_contain_text("Review round one")
    expect(page.locator("#review-count")).to_contain_text("6 items")
    page.evaluate("window.stillTheSamePage = true")  # gone if anything reloads the page

    page.select_option("#id_filter", "disagreement")
    expect(page.locator("#review-count")).to_contain_text("1 item matches these filters")
    expect(page).to_have_url(re.compile(r"filter=disagreement"))  # the querystring drives it
    row = page.locator(f"#item-{split.pk}")
    expect(row).to_contain_text("judge-2")
    expect(row).to_contain_text("invalid (-2)")

    row.locator("select[name=value]").select_option("-2")
    row.locator("button:has-text('Set')").click()
    row = page.locator(f"#item-{split.pk}")
    expect(row.locator(".adjudication")).to_contain_text("by res")
    expect(row.locator(".label-used")).to_contain_text("not acceptable")
    assert page.evaluate("window.stillTheSamePage === true")  # htmx swapped the row only
    split.refresh_from_db()
    assert split.adjudicated_value == -2 and split.adjudicated_by.username == "res"

    with page.expect_download() as download:
        page.click("a:has-text('Aggregated export (CSV)')")
    exported = tmp_path / "aggregated.csv"
    download.value.save_as(exported)
    with exported.open(encoding="utf-8") as f:
        rows = {int(r["item"]): r for r in csv.DictReader(f)}
    assert rows[split.pk]["adjudicated_value"] == "-2"
    assert rows[split.pk]["adjudicated_by"] == "res"
    assert rows[split.pk]["label"] == "False"
    assert rows[split.pk]["majority"] == "True"  # what the crowd said stays beside it

    # The critic trains on the final label (its own selector, the one training reads).
    learning = corpus_labels(corpus_id=campaign.corpus_id).learning
    assert learning.labels[learning.triple_ids == split.triple_id].tolist() == [0]
