"""A new researcher's first session, in a real Chromium, with a real Celery worker on Redis."""

import re

import pytest
from playwright.sync_api import expect

from accounts.services import user_create_with_role

pytestmark = pytest.mark.e2e


def test_researcher_imports_references_from_the_upload_page_and_exports_them_back(
    live_server, redis_celery_worker, page, shared_data, tmp_path
):
    user_create_with_role(username="newcomer", password="a-long-pass-123", role="researcher")
    source = shared_data / "references.tsv"

    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "newcomer")
    page.fill("input[name=password]", "a-long-pass-123")
    page.click("button:has-text('Log in')")
    expect(page).to_have_url(f"{live_server.url}/corpora/")

    page.goto(f"{live_server.url}/corpora/import/")
    page.set_input_files("input[name=file]", str(source))
    page.fill("input[name=corpus_name]", "atomic2020-references")
    page.click("button:has-text('Upload and import')")

    # The job page polls itself (htmx) until the worker is done.
    expect(page.locator("#job-status .status")).to_have_text("Succeeded", timeout=90_000)
    # ATOMIC's "none" tails (no inference) are dropped from ATOMIC TSV by default.
    expect(page.locator("#job-status")).to_contain_text("11,926")
    expect(page.locator("#job-status")).to_contain_text("'none' tails dropped801")
    page.click("a:has-text('Open atomic2020-references')")
    expect(page.locator("body")).to_contain_text("11,926")

    # Searching heads swaps the table in place.
    page.fill("input[name=q]", "things for granted")
    page.click("button:has-text('Filter')")
    rows = page.locator("#triples tbody tr")
    expect(rows.first).to_contain_text("PersonX takes things for granted")
    expect(page).to_have_url(re.compile(r"q=things"))

    page.select_option("select[name=format]", "tsv")
    page.click("#export button:has-text('Export')")
    expect(page.locator("#job-status .status")).to_have_text("Succeeded", timeout=90_000)
    with page.expect_download() as download_info:
        page.click("a:has-text('Download')")
    exported = tmp_path / "exported.tsv"
    download_info.value.save_as(exported)
    lines = exported.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 11926
    assert lines[0] == "PersonX takes things for granted\txNeed\tto have been lazy at work"


def test_an_annotator_is_kept_out_of_researcher_pages(live_server, page, db):
    user_create_with_role(username="ann", password="a-long-pass-123", role="annotator")
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "ann")
    page.fill("input[name=password]", "a-long-pass-123")
    page.click("button:has-text('Log in')")
    expect(page.locator("body")).not_to_contain_text("Corpora /")
    response = page.goto(f"{live_server.url}/corpora/")
    assert response.status == 403
