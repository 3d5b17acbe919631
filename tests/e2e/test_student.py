"""A researcher trains a student on a preset's cut in a real Chromium, watches it train on a
real Celery worker, evaluates it, sends its outputs to annotation blind (the teacher's tails
mixed in, a neutral name) and reads the comparison."""

import pytest
from playwright.sync_api import expect

from accounts.services import user_create_with_role
from critic.services.presets import preset_save
from critic.services.scoring import corpus_rescore
from critic.services.training import critic_train
from distillation.models import StudentRun
from tests.distillation.conftest import tiny_gpt2  # noqa: F401 (fixture)

pytestmark = pytest.mark.e2e


def test_from_a_preset_to_a_judged_student_and_the_comparison(
    live_server,
    redis_celery_worker,
    labelled_corpus,
    page,
    tiny_gpt2,  # noqa: F811
):
    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    corpus_rescore(corpus=labelled_corpus)
    preset_save(corpus=labelled_corpus, name="keep-most", version=version, threshold=0.4)
    user_create_with_role(username="res", password="a-long-pass-123", role="researcher")

    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "res")
    page.fill("input[name=password]", "a-long-pass-123")
    page.click("button:has-text('Log in')")
    page.goto(f"{live_server.url}/critic/{labelled_corpus.pk}/")
    page.click("a:has-text('Train a student on this cut')")
    expect(page.locator("#new-run")).to_contain_text("keep-most")

    page.fill("input[name=name]", "tiny-student")
    page.fill("input[name=base_model]", tiny_gpt2)
    page.fill("input[name=val_split]", "val")
    page.fill("input[name=max_steps]", "40")
    page.fill("input[name=learning_rate]", "0.003")
    page.fill("input[name=batch_size]", "8")
    page.select_option("select[name=device]", "cpu")
    page.click("button:has-text('Create and start training')")

    # The page follows the job on its own and shows the finished run with its curve.
    expect(page.locator("#run-live")).to_contain_text("Trained", timeout=120_000)
    expect(page.locator("#loss-curve polyline.train")).to_have_count(1)
    run = StudentRun.objects.get(name="tiny-student")
    assert run.steps == 40 and run.preset.name == "keep-most"
    losses = [loss for _, loss in run.loss_history]
    assert losses[-1] < losses[0]

    page.fill("#new-evaluation input[name=max_heads]", "4")
    page.click("#new-evaluation button:has-text('Evaluate')")
    send = page.locator("button:has-text('Send to annotation')")
    expect(send).to_be_visible(timeout=120_000)
    expect(page.locator("#metrics")).to_contain_text("Distinct-2", ignore_case=True)
    # Blind: the teacher's tails mixed in, under a neutral name.
    expect(page.locator("#send input[name=with_teacher]")).to_be_checked()
    page.fill("#send input[name=judgments_per_item]", "2")
    send.click()
    expect(page.locator("h1")).to_contain_text("Commonsense judgments")
    expect(page.locator("h1")).not_to_contain_text("tiny-student")

    page.goto(f"{live_server.url}/distillation/compare/{labelled_corpus.pk}/")
    table = page.locator("#comparison-table")
    expect(table).to_contain_text("teacher")
    expect(table).to_contain_text("keep-most")
    expect(table).to_contain_text("tiny-student")
    # Nothing judged yet: each blind cell says so.
    expect(page.locator("section.blind")).to_contain_text("too few labels")
