"""A teacher run from the pages, in a real Chromium at 1280 px, with a real Celery worker on
Redis and a loopback OpenAI-compatible server: teacher, check, run, its page, its corpus."""

import re

import pytest
from playwright.sync_api import expect

from accounts.services import user_create_with_role
from corpora.models import Triple
from generation.models import FewShotPool
from generation.services.pools import pool_import_lines
from tests.generation.openai_server import OpenAIServer, ServerState

pytestmark = pytest.mark.e2e

LONG_MODEL = "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo-with-a-rather-long-local-name"


def test_a_researcher_runs_a_teacher_from_the_pages_and_follows_it_to_its_corpus(
    live_server, redis_celery_worker, page
):
    user_create_with_role(username="teach", password="a-long-pass-123", role="researcher")
    pool = FewShotPool.objects.create(name="refs")
    pool_import_lines(pool=pool, lines=["PersonX goes fishing\txNeed\ta fishing rod\n"])

    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "teach")
    page.fill("input[name=password]", "a-long-pass-123")
    page.click("button:has-text('Log in')")

    # A little slowness, so that the page is seen while the run is under way.
    with OpenAIServer(ServerState(delay=0.05)) as server:
        page.goto(f"{live_server.url}/corpora/teachers/")
        expect(page.locator("input[name=base_url]")).to_have_attribute(
            "placeholder", "http://127.0.0.1:8080/v1"
        )
        page.fill("input[name=name]", "loopback")
        page.fill("input[name=base_url]", server.url)
        page.fill("input[name=model]", LONG_MODEL)
        page.click("button:has-text('Save teacher')")
        expect(page.locator("#teachers")).to_contain_text("loopback")

        # The whole table fits a 1280 px window: Check is on screen, nothing scrolls.
        check = page.locator("#teachers button:has-text('Check')")
        box = check.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1280, box
        assert page.locator("#teachers").evaluate(
            "t => t.closest('.table-wrap').scrollWidth <= t.closest('.table-wrap').clientWidth"
        )
        check.click()
        expect(page.locator(".message.success")).to_contain_text(
            "Teacher loopback answered a test completion"
        )
        assert server.state.requests["check"] == 1

        page.goto(f"{live_server.url}/corpora/runs/new/")
        page.fill("input[name=corpus_name]", "taught")
        for checkbox in page.locator("input[name=relations]").all():
            checkbox.uncheck()
        page.check("input[name=relations][value=xNeed]")
        page.check("input[name=relations][value=xWant]")
        page.fill("textarea[name=heads]", "PersonX paints a fence\nPersonX buys bread\n")
        page.fill("input[name=n_per_pair]", "3")
        page.click("button:has-text('Create run')")
        expect(page.locator("#estimate dd").first).to_have_text("4")  # requests
        run_url = page.url
        assert re.search(r"/corpora/runs/\d+/$", run_url)

        page.click("#run-live button:has-text('Start')")
        # Starting stays on the run's own page, which follows the job until it is done.
        expect(page).to_have_url(run_url)
        expect(page.locator("#run-live .status")).to_have_text("Succeeded", timeout=90_000)
        expect(page.locator("#run-live")).to_contain_text("Nothing left to send.")
        expect(page.locator("#run-live")).not_to_contain_text("{'")

    assert Triple.objects.filter(corpus__name="taught").count() == 12
    # The job page speaks plainly and links back to the run and on to the corpus.
    page.click("#run-live a:has-text('Job')")
    expect(page.locator("#job-status")).to_contain_text("Triples written")
    expect(page.locator("#job-status")).not_to_contain_text("{'")
    expect(page.locator("#job-status a:has-text('Open run')")).to_be_visible()
    page.click("#job-status a:has-text('Open its corpus')")
    expect(page.locator("h1")).to_contain_text("taught")
    expect(page.locator("body")).to_contain_text("PersonX paints a fence")
