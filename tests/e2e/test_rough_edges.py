"""The rough edges a newcomer met, walked in a real Chromium: the corpus table's paging,
count and filter, the favicon, the critic's threshold marker, a student's validation loss
while it trains, and the annotator's page on a phone."""

import re

import pytest
from playwright.sync_api import expect

from accounts.services import user_create_with_role
from annotation.services.campaigns import campaign_create
from annotation.services.membership import member_add
from corpora.services import corpus_refresh_counts
from critic import charts
from critic.services.scoring import corpus_rescore
from critic.services.training import critic_train
from distillation.models import StudentRun
from distillation.services.runs import student_run_create, student_run_start
from jobs.models import Job
from jobs.services import job_cancel
from tests.annotation.conftest import make_corpus
from tests.distillation.conftest import tiny_gpt2  # noqa: F401 (fixture)
from tests.factories import CorpusFactory, EventFactory, TripleFactory

pytestmark = pytest.mark.e2e

PASSWORD = "a-long-pass-123"
TICKS = ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]


def log_in(page, live_server, username: str, role: str = "researcher") -> None:
    user_create_with_role(username=username, password=PASSWORD, role=role)
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")
    expect(page.locator(".nav-user")).to_contain_text(username)


def test_corpus_table_pages_both_ways_counts_and_filters_without_aborting(live_server, page):
    corpus = CorpusFactory(name="big")
    for i in range(120):
        head = EventFactory(text=f"PersonX bakes cake {i}" if i % 10 == 0 else f"PersonX runs {i}")
        TripleFactory(corpus=corpus, head=head, tail=f"tail number {i:03d}")
    corpus_refresh_counts(corpus=corpus)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    fragments: list[str] = []
    page.on(
        "request",
        lambda r: fragments.append(r.url) if r.headers.get("hx-request") == "true" else None,
    )
    log_in(page, live_server, "res")

    # The favicon: linked from the page, and /favicon.ico answers (no 404 on every page).
    icon = page.request.get(f"{live_server.url}/favicon.ico")
    assert icon.status == 200 and icon.body()[:4] == b"\x00\x00\x01\x00"
    page.goto(f"{live_server.url}/corpora/{corpus.pk}/")
    for href in page.eval_on_selector_all("link[rel=icon]", "links => links.map(l => l.href)"):
        assert page.request.get(href).status == 200, href

    table = page.locator("#triple-table")
    count = page.locator("#triple-count")
    expect(count).to_have_text("120 triples")

    def tails() -> list[str]:
        return re.findall(r"tail number (\d{3})", table.inner_text())

    assert tails() == [f"{i:03d}" for i in range(50)]
    expect(table.locator("a[rel=prev]")).to_have_count(0)
    page.evaluate("window.stillTheSamePage = true")  # gone if anything reloads the page
    table.locator("a[rel=next]").click()
    expect(table).to_contain_text("tail number 099")
    table.locator("a[rel=next]").click()
    expect(table).to_contain_text("tail number 119")
    assert tails() == [f"{i:03d}" for i in range(100, 120)]
    table.locator("a[rel=prev]").click()
    expect(table).to_contain_text("tail number 050")
    assert tails() == [f"{i:03d}" for i in range(50, 100)]
    assert "before=" in page.url
    table.locator("a[rel=prev]").click()
    expect(table).to_contain_text("tail number 000")
    expect(table.locator("a[rel=prev]")).to_have_count(0)
    assert page.evaluate("window.stillTheSamePage") is True

    # Typing a search and pressing Filter at once: one request, none aborted.
    sent = len(fragments)
    page.fill("#triples-q", "bakes")
    page.click("#triple-filters button[type=submit]")
    expect(count).to_have_text("12 triples match these filters")
    page.wait_for_timeout(700)  # past the typing pause: nothing more is sent
    assert len(fragments) - sent == 1, fragments[sent:]
    # Typing, waiting for the answer, then pressing Filter: the same query is not sent twice.
    sent = len(fragments)
    page.fill("#triples-q", "runs")
    expect(count).to_have_text("108 triples match these filters")
    page.click("#triple-filters button[type=submit]")
    page.wait_for_timeout(700)
    assert len(fragments) - sent == 1, fragments[sent:]
    assert not [e for e in errors if "sendAbort" in e or "htmx" in e], errors


def test_the_threshold_marker_follows_the_slider(live_server, page, labelled_corpus):
    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    corpus_rescore(corpus=labelled_corpus)
    log_in(page, live_server, "res")
    page.goto(f"{live_server.url}/critic/{labelled_corpus.pk}/")

    for chart_id in ("#pr-curve", "#roc-curve"):
        svg = page.locator(f"{chart_id} svg")
        card = page.locator(chart_id)
        # As wide as its card (it was about 270 px), ticks labelled on both axes.
        assert svg.bounding_box()["width"] >= card.bounding_box()["width"] - 50
        expect(svg.locator(".x-ticks text")).to_have_text(TICKS)
        expect(svg.locator(".y-ticks text")).to_have_count(6)
        expect(svg.locator(".threshold-marker .marker")).to_be_visible()

    pr = page.locator("#pr-curve .threshold-marker")
    before = (pr.locator(".marker").get_attribute("cx"), pr.locator(".marker").get_attribute("cy"))
    page.locator("#threshold-slider").fill("0.3")
    expect(pr.locator(".marker-label")).to_have_text("t = 0.300")
    frame = charts.Frame(0.0, 1.0, 0.0, 1.0)
    x, y = charts.point_at(version.curves["pr"], 0.3)
    cx = float(pr.locator(".marker").get_attribute("cx"))
    cy = float(pr.locator(".marker").get_attribute("cy"))
    assert (cx, cy) == (pytest.approx(frame.px(x), abs=0.2), pytest.approx(frame.py(y), abs=0.2))
    assert (str(cx), str(cy)) != before
    # The panel below follows too (from the server).
    expect(page.locator("#threshold-panel dl.stats")).to_contain_text("0.3")


def test_a_student_shows_its_validation_loss_while_it_trains(
    live_server,
    redis_celery_worker,
    labelled_corpus,
    page,
    tiny_gpt2,  # noqa: F811
):
    run = student_run_create(
        name="watched",
        corpus=labelled_corpus,
        base_model=tiny_gpt2,
        val_split="val",
        max_steps=400,  # more than the test waits for: it is cancelled once seen
        batch_size=8,
        learning_rate=3e-3,
        save_every=100_000,
        device="cpu",
    )
    log_in(page, live_server, "res")
    job = student_run_start(run=run)
    try:
        page.goto(f"{live_server.url}/distillation/runs/{run.pk}/")
        # The page polls while the job runs: validation points appear before the end.
        dots = page.locator("#loss-curve .validation-loss .dot")
        expect(dots).not_to_have_count(0, timeout=120_000)
        expect(page.locator("#loss-curve .curve.train")).to_have_count(1)
        expect(page.locator("#loss-curve .chart-legend")).to_contain_text("Validation loss")
        job.refresh_from_db()
        run.refresh_from_db()
        assert job.status == Job.Status.RUNNING and run.finished_at is None
        found = re.findall(r"step ([\d,]+): validation", page.content())
        steps = [int(step.replace(",", "")) for step in found]
        assert steps and max(steps) < 400
    finally:
        job_cancel(job=job)  # the worker stops at its next step
    expect(page.locator("#run-live")).to_contain_text("Cancelled", timeout=60_000)
    assert not StudentRun.objects.get(pk=run.pk).is_trained


def test_an_annotator_on_a_phone_gets_no_keys_panel(live_server, page):
    campaign = campaign_create(
        corpus=make_corpus(10, name="teacher"), name="phone", size=5, gold_share=0.0
    )
    for username in ("ann", "ann2"):  # only members judge a campaign
        ann = user_create_with_role(username=username, password=PASSWORD, role="annotator")
        member_add(campaign=campaign, annotator=ann)
    phone = page.context.browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        small = phone.new_page()
        log_in(small, live_server, "ann", role="annotator")
        small.click("a:has-text('Start')")
        expect(small.locator("#judge-card .judge-sentence")).to_be_visible()
        expect(small.locator(".judge-side .keys")).to_be_hidden()
        for button in small.locator("#judge-card button").all():
            assert button.bounding_box()["height"] >= 44, button.inner_text()
        assert small.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        phone.close()
    # A desktop keeps it.
    log_in(page, live_server, "ann2", role="annotator")
    page.click("a:has-text('Start')")
    expect(page.locator(".judge-side .keys")).to_be_visible()
