"""Crowds arriving through one join link at once, against PostgreSQL (threads, each with
its own connection and browser session): exactly one annotator per worker, a link's
`max_uses` holds, and the k-per-item and once-per-annotator invariants with them."""

import re
import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.db.models import Count
from django.test import Client
from django.urls import reverse

from annotation.models import CampaignAnnotator, CrowdWorker, Item, JoinLink, Judgment
from annotation.services.campaigns import campaign_create
from annotation.services.joining import join_link_create
from tests.annotation.conftest import make_corpus

K = 3
SHOWN = re.compile(r'data-assignment="(\d+)"')


@pytest.fixture
def crowd_settings(transactional_db, settings):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent arrivals need PostgreSQL (SQLite runs one writer at a time)")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.JOIN_RATE_PER_MINUTE = 0  # every arrival comes from 127.0.0.1 here


def arrive_all(link: JoinLink, count: int, judge: int) -> tuple[list[int], list[BaseException]]:
    """`count` workers open the link at once (their own PROLIFIC_PID each) and judge."""
    start = threading.Barrier(count)
    codes: list[int] = []
    errors: list[BaseException] = []
    judge_url = reverse("annotation:judge", args=[link.campaign_id])

    def worker(n: int) -> None:
        try:
            browser = Client()
            start.wait(timeout=30)
            query = f"?PROLIFIC_PID=pid{n:03d}&STUDY_ID=ST&SESSION_ID=SE{n}"
            response = browser.post(reverse("join", args=[link.token]) + query)
            codes.append(response.status_code)
            if response.status_code != 302:
                return
            for _ in range(judge):
                # (The test client's captured contexts are shared between threads: read
                # the page itself.)
                shown = SHOWN.search(browser.get(judge_url).content.decode())
                if shown is None:
                    return
                browser.post(judge_url, {"assignment": shown.group(1), "value": 2})
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return codes, errors


def test_fifty_workers_through_one_link_make_fifty_annotators(crowd_settings):
    campaign = campaign_create(
        corpus=make_corpus(80), name="crowd", size=40, judgments_per_item=K, gold_share=0.0
    )
    link = join_link_create(campaign=campaign, platform="prolific")
    codes, errors = arrive_all(link, 50, judge=3)
    assert errors == []
    assert codes == [302] * 50
    assert CrowdWorker.objects.count() == 50
    assert get_user_model().objects.filter(username__startswith="prolific-").count() == 50
    assert CampaignAnnotator.objects.filter(campaign=campaign).count() == 50
    link.refresh_from_db()
    assert link.uses == 50
    # k per item, and once per annotator.
    judged = dict(
        Judgment.objects.filter(campaign=campaign)
        .values_list("item_id")
        .annotate(n=Count("pk"))
        .values_list("item_id", "n")
    )
    assert judged and max(judged.values()) <= K
    for item in Item.objects.filter(campaign=campaign):
        assert item.judgment_count == judged.get(item.pk, 0) <= K
    twice = (
        Judgment.objects.values("item_id", "annotator_id").annotate(n=Count("pk")).filter(n__gt=1)
    )
    assert not twice.exists()
    # 150 tries at 120 slots: nearly all filled (a claim may pass over an item another
    # holds locked for an instant and find nothing, as a person reloading would not).
    assert Judgment.objects.filter(campaign=campaign).count() >= 100


def test_a_link_for_ten_admits_ten_of_thirty(crowd_settings):
    campaign = campaign_create(corpus=make_corpus(20), name="ten", size=10, gold_share=0.0)
    link = join_link_create(campaign=campaign, platform="prolific", max_uses=10)
    codes, errors = arrive_all(link, 30, judge=1)
    assert errors == []
    assert sorted(codes) == [302] * 10 + [410] * 20
    assert CrowdWorker.objects.count() == 10
    assert CampaignAnnotator.objects.filter(campaign=campaign).count() == 10
    link.refresh_from_db()
    assert link.uses == 10
