"""A researcher picks a threshold on the critic's dashboard in a real Chromium, saves it as
a preset and downloads the filtered corpus with its card (export on a real Celery worker)."""

import pytest
from playwright.sync_api import expect

from accounts.services import user_create_with_role
from corpora.models import Triple
from critic.models import FilterPreset
from critic.services.scoring import corpus_rescore
from critic.services.training import critic_train

pytestmark = pytest.mark.e2e


def test_researcher_moves_the_threshold_saves_a_preset_and_downloads_the_cut(
    live_server, redis_celery_worker, labelled_corpus, page, tmp_path
):
    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    corpus_rescore(corpus=labelled_corpus)
    user_create_with_role(username="res", password="a-long-pass-123", role="researcher")

    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "res")
    page.fill("input[name=password]", "a-long-pass-123")
    page.click("button:has-text('Log in')")
    page.goto(f"{live_server.url}/critic/{labelled_corpus.pk}/")
    expect(page.locator("h1")).to_contain_text("Critic of demo")
    page.evaluate("window.stillTheSamePage = true")  # gone if anything reloads the page

    # The slider asks the server for the panel (htmx); counts come from the histograms.
    kept = (
        Triple.objects.filter(corpus=labelled_corpus)
        .with_score(labelled_corpus)
        .filter(score__gte=0.9)
        .count()
    )
    page.locator("#threshold-slider").fill("0.9")
    panel = page.locator("#threshold-panel")
    expect(panel).to_contain_text(f"{kept} (")
    assert page.evaluate("window.stillTheSamePage") is True

    page.locator("#threshold-panel input[name=name]").fill("strict")
    page.click("#threshold-panel button:has-text('Save preset')")
    expect(page.locator("#presets")).to_contain_text("strict")
    preset = FilterPreset.objects.get(corpus=labelled_corpus, name="strict")
    assert preset.threshold == 0.9 and preset.version_id == version.pk

    page.click("#presets button:has-text('Export with card')")
    expect(page.locator("#job-status .status")).to_have_text("Succeeded", timeout=90_000)
    with page.expect_download() as download_info:
        page.click("a:has-text('Download')")
    exported = tmp_path / "strict.jsonl"
    download_info.value.save_as(exported)
    assert len(exported.read_text(encoding="utf-8").splitlines()) == kept
    with page.expect_download() as card_info:
        page.click("a:has-text('Dataset card')")
    assert card_info.value.suggested_filename == "demo.card.md"
    card = tmp_path / "demo.card.md"
    card_info.value.save_as(card)
    text = card.read_text(encoding="utf-8")
    assert "filtered by preset 'strict'" in text and f"{kept} triples exported" in text
