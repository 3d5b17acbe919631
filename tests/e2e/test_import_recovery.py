"""A newcomer's upload with a few bad lines, in a real Chromium with a real Celery worker
on Redis: the import fails and says which lines and fields, with no green banner left
behind; "Import the valid lines" then imports the rest."""

import pytest
from playwright.sync_api import expect

from accounts.services import user_create_with_role
from corpora.models import Corpus, Triple

pytestmark = pytest.mark.e2e

VALID = [
    ("PersonX bakes bread", "xNeed", "flour"),
    ("PersonX bakes bread", "xIntent", "to eat"),
    ("PersonX runs a race", "xAttr", "fit"),
    ("PersonX runs a race", "xEffect", "gets tired"),
]


def test_a_failed_upload_then_import_the_valid_lines(
    live_server, redis_celery_worker, page, tmp_path
):
    user_create_with_role(username="newcomer", password="a-long-pass-123", role="researcher")
    lines = ["\t".join(row) for row in VALID[:2]]
    lines += ["PersonX bakes bread\txNope\tan oven", "PersonX sings\txWant"]
    lines += ["\t".join(row) for row in VALID[2:]]
    lines += ["PersonX naps\txNeed\ta \x00bed"]
    upload = tmp_path / "mixed.tsv"
    upload.write_text("\n".join(lines) + "\n")

    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "newcomer")
    page.fill("input[name=password]", "a-long-pass-123")
    page.click("button:has-text('Log in')")
    page.goto(f"{live_server.url}/corpora/import/")
    page.set_input_files("input[name=file]", str(upload))
    page.fill("input[name=corpus_name]", "recovered")
    page.click("button:has-text('Upload and import')")

    status = page.locator("#job-status .status")
    expect(status).to_have_text("Failed", timeout=90_000)
    expect(page.locator(".messages")).to_have_count(0)  # no "Upload received" left, green
    error = page.locator("#job-status .error-box")
    expect(error).to_contain_text("3 invalid line(s); nothing was imported")
    expect(error).to_contain_text("mixed.tsv, line 3, field 'relation': unknown relation 'xNope'")
    expect(error).to_contain_text("mixed.tsv, line 4, field '(line)': expected 3 tab-separated")
    expect(error).to_contain_text("mixed.tsv, line 7, field 'tail': holds the control character")
    assert not Corpus.objects.filter(name="recovered").exists()

    page.click("button:has-text('Import the valid lines')")
    expect(status).to_have_text("Succeeded", timeout=90_000)
    stats = page.locator("#job-status dl.stats")
    expect(stats).to_contain_text("Imported4")
    expect(stats).to_contain_text("Rejected3")
    expect(page.locator("a:has-text('Download rejected lines')")).to_be_visible()
    page.click("a:has-text('Open recovered')")
    expect(page.locator("h1")).to_contain_text("recovered")

    stored = set(
        Triple.objects.filter(corpus__name="recovered").values_list(
            "head__text", "relation__name", "tail"
        )
    )
    assert stored == set(VALID)
