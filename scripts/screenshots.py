"""Refresh the screenshots in docs/ from the demo, on a throwaway database.

    make screenshots                       # or: .venv/bin/python scripts/screenshots.py
    .venv/bin/python scripts/screenshots.py --keep    # keep the temporary folder to look at

Makes a temporary folder for everything the app writes (SKD_VAR_DIR: the SQLite file,
uploads, models, artifacts, the broker's folders), migrates, loads the demo
(`manage.py load_demo`: corpus, users, campaign, a first critic, the tiny GPT-2 teacher
and student base) and starts the app there (`manage.py runserver` and a Celery worker).
Then it walks the loop the way a person would, through the pages and the CLI: the demo
annotator judges a few triples with the keyboard, two simulated annotators add
judgments, the demo researcher saves the critic's rec_80 cut as a preset, a student is
trained on that cut and evaluated, a run of the demo teacher on a few heads is started
from its page, and the campaign's statistics are recomputed from its page just before
the pictures. Chromium (`SKD_CHROMIUM`, else /usr/bin/chromium; Playwright's own
browsers are not used) takes the pictures. Only docs/screenshot*.png in the tree are
written.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PYTHON = ROOT / ".venv" / "bin" / "python"
DEMO_CORPUS = ROOT / "demo" / "demo_corpus.jsonl"
CAMPAIGN = "demo: first look"
RESEARCHER = ("researcher", "skd-researcher-demo")
ANNOTATOR = ("annotator", "skd-annotator-demo")
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Studio:
    """The app on a throwaway database: management commands and a live server."""

    def __init__(self, var: Path) -> None:
        self.var = var
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k
            not in {
                "DATABASE_URL",
                "SQLITE_PATH",
                "CELERY_BROKER_URL",
                "REDIS_URL",
                "SKD_MEDIA_ROOT",
                "SKD_ARTIFACT_ROOT",
                "DJANGO_ENV",
                "DJANGO_SETTINGS_MODULE",
            }
        }
        self.env.update(SKD_VAR_DIR=str(var), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
        self.server: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.url = ""

    def manage(self, *args: str) -> str:
        started = time.perf_counter()
        result = subprocess.run(
            [str(PYTHON), "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if result.returncode:
            sys.stderr.write(result.stdout + result.stderr)
            raise SystemExit(f"manage.py {args[0]} failed (exit {result.returncode})")
        say(f"manage.py {' '.join(args)}: {time.perf_counter() - started:.1f} s")
        return result.stdout

    def start(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        log = open(self.var / "server.log", "w")  # noqa: SIM115 (closed with the process)
        self.server = subprocess.Popen(
            [str(PYTHON), "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/login/", timeout=2).close()
                say(f"app serving at {self.url} (log: {self.var / 'server.log'})")
                return
            except OSError:
                if self.server.poll() is not None:
                    break
                time.sleep(0.5)
        raise SystemExit(f"the server did not start; see {self.var / 'server.log'}")

    def start_worker(self) -> None:
        """A Celery worker for the jobs the pages queue (no beat: nothing retrains behind
        the pictures' back)."""
        log = open(self.var / "worker.log", "w")  # noqa: SIM115 (closed with the process)
        self.worker = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "celery"), "-A", "config", "worker", "-l", "info"]
            + ["--concurrency", "1", "-Q", "default,gpu"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        say(f"worker started (log: {self.var / 'worker.log'})")

    def stop(self) -> None:
        for process in (self.server, self.worker):
            if process and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()


def login(browser, studio: Studio, user: tuple[str, str]):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{studio.url}/login/")
    page.fill("input[name=username]", user[0])
    page.fill("input[name=password]", user[1])
    page.click("button:has-text('Log in')")
    page.wait_for_load_state()
    return page


def shot(target, name: str, **options) -> None:
    path = DOCS / name
    target.screenshot(path=str(path), **options)
    say(f"docs/{name} ({path.stat().st_size // 1024} KB)")


def reload_until(page, text: str, seconds: float = 600) -> None:
    """Reload the page until it shows `text` (a job the worker finishes)."""
    deadline = time.monotonic() + seconds
    while text not in page.locator("main, body").first.inner_text():
        if time.monotonic() > deadline:
            raise SystemExit(f"{page.url} did not show {text!r} within {seconds:.0f} s")
        page.wait_for_timeout(2000)
        page.reload()


def known_labels() -> dict[tuple[str, str, str], int]:
    labels = {}
    for line in DEMO_CORPUS.read_text().splitlines():
        row = json.loads(line)
        labels[(row["head"], row["relation"], row["tail"])] = row["valid"]
    return labels


def annotate(browser, studio: Studio, judgments: int = 8) -> None:
    """The demo annotator judges a few triples with the keyboard, as the demo's labels say
    (a triple the file lacks is a known-bad gold item: farfetched)."""
    from playwright.sync_api import expect

    page = login(browser, studio, ANNOTATOR)
    page.click("a:has-text('Start')")
    card = page.locator("#judge-card")
    expect(card.locator(".judge-sentence")).to_be_visible()
    page.locator("body").click(position={"x": 5, "y": 300})  # focus the page, not a field
    labels = known_labels()

    def row(label: str) -> str:
        return card.locator(f"dt:has-text('{label}') + dd").first.inner_text().strip()

    for _ in range(judgments):
        before = card.get_attribute("data-assignment")
        try:
            key = (row("Head"), row("Relation"), row("Tail"))
            valid = labels.get(key, -1)
        except Exception:  # the layout changed: any answer will do for a picture
            valid = 1
        page.keyboard.press("1" if valid == 2 else "2" if valid > 0 else "3")
        expect(card).not_to_have_attribute("data-assignment", before or "")
    page.keyboard.press("g")  # the guidelines open, as in the picture
    page.wait_for_timeout(300)
    shot(page, "screenshot-annotate.png", full_page=True)
    page.context.close()


def researcher_pages(browser, studio: Studio, student: str) -> None:
    page = login(browser, studio, RESEARCHER)

    page.goto(f"{studio.url}/corpora/")
    page.get_by_role("link", name="demo", exact=True).first.click()
    page.wait_for_load_state()
    corpus_pk = re.search(r"/corpora/(\d+)/", page.url).group(1)
    shot(page, "screenshot.png")

    page.goto(f"{studio.url}/annotation/")
    page.get_by_role("link", name=CAMPAIGN).first.click()
    page.wait_for_load_state()
    campaign_url = page.url
    page.click("button:has-text('Recompute now')")  # the statistics, computed by the worker
    job = re.search(r"job (\d+)", page.locator("body").inner_text()).group(1)
    page.goto(f"{studio.url}/jobs/{job}/")
    reload_until(page, "Succeeded")
    page.goto(campaign_url)
    shot(page, "screenshot-campaign.png", full_page=True)

    page.goto(f"{studio.url}/critic/{corpus_pk}/")
    shot(page.locator("#threshold"), "screenshot-critic.png")

    page.goto(f"{studio.url}/corpora/runs/")
    page.locator("table a[href*='/corpora/runs/']").first.click()
    page.wait_for_load_state()
    if page.locator("button:has-text('Start')").count():  # the run, on the worker
        page.locator("button:has-text('Start')").first.click()
        page.wait_for_load_state()
        reload_until(page, "Succeeded")
    shot(page, "screenshot-run.png", full_page=True)

    page.goto(f"{studio.url}/distillation/")
    page.get_by_role("link", name=student, exact=True).first.click()
    page.wait_for_load_state()
    shot(page, "screenshot-student.png")

    page.goto(f"{studio.url}/distillation/compare/{corpus_pk}/")
    shot(page, "screenshot-compare.png")
    page.context.close()


def save_rec80_preset(browser, studio: Studio) -> str:
    """The researcher saves the critic's SKD cut-off at expected recall 0.8 as a preset."""
    page = login(browser, studio, RESEARCHER)
    page.goto(f"{studio.url}/corpora/")
    page.get_by_role("link", name="demo", exact=True).first.click()
    corpus_pk = re.search(r"/corpora/(\d+)/", page.url).group(1)
    page.goto(f"{studio.url}/critic/{corpus_pk}/")
    row = page.locator("#skd-cutoffs tr", has_text="rec_80")
    name = row.locator("input[name=name]").get_attribute("value")
    row.locator("button:has-text('Save as preset')").click()
    page.wait_for_load_state()
    page.context.close()
    say(f"preset {name} saved")
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    chromium = os.environ.get("SKD_CHROMIUM") or "/usr/bin/chromium"
    if not os.path.exists(chromium):
        raise SystemExit(f"no Chromium at {chromium} (Debian's chromium package, or SKD_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    var = Path(tempfile.mkdtemp(prefix="skd-screenshots-"))
    studio = Studio(var)
    try:
        studio.manage("migrate", "--noinput", "-v0")
        studio.manage("load_demo")
        studio.start()
        studio.start_worker()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=BROWSER_ARGS)
            annotate(browser, studio)
            studio.manage(
                "simulate_annotators",
                CAMPAIGN,
                "--annotators=2",
                f"--labels={DEMO_CORPUS}",
                "--noise=0.1",
                "--judgments=40",
                "--seed=2021",
            )
            preset = save_rec80_preset(browser, studio)

            heads = var / "heads.txt"
            rows = [json.loads(line) for line in DEMO_CORPUS.read_text().splitlines()]
            test_heads = list(dict.fromkeys(r["head"] for r in rows if r["split"] == "test"))
            heads.write_text("\n".join(test_heads[:6]) + "\n")
            studio.manage(
                "generate",
                "--teacher=demo-tiny-gpt2",
                "--pool=demo",
                "--corpus=teacher-run-1",
                f"--heads-file={heads}",
                "--n=3",
                "--estimate-only",  # made here, started from its page
            )
            student = "demo-student"
            studio.manage(
                "train_student",
                f"--name={student}",
                "--corpus=demo",
                f"--preset={preset}",
                f"--base-model={var / 'models' / 'tiny-gpt2'}",
                "--val-split=val",
                "--epochs=12",
                "--learning-rate=1e-3",
            )
            studio.manage("evaluate_student", f"--run={student}", "--split=test")
            researcher_pages(browser, studio, student)
            browser.close()
    finally:
        studio.stop()
        if args.keep:
            say(f"kept {var}")
        else:
            shutil.rmtree(var, ignore_errors=True)
    say(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
