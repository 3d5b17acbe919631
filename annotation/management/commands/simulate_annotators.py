"""Simulated annotators: they claim and answer through the same services as the
annotator page, from a file of known labels with a share of answers flipped."""

from __future__ import annotations

import random
import secrets
import threading
import time
from dataclasses import dataclass, field

import orjson
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Exists, OuterRef

from accounts.services import user_create_with_role
from annotation import selectors
from annotation.errors import AnnotatorPaused, AssignmentNotFound, CampaignClosed, LeaseRefused
from annotation.models import Assignment, Campaign, Item
from annotation.services.judgments import judgment_submit
from annotation.services.leasing import assignment_next
from annotation.services.membership import member_add
from core.handlers import AppCommand
from core.roles import ANNOTATOR, is_annotator
from corpora.formats import SKD_VALID_VALUES, FormatError, clean_text, normalize_tail, open_binary

from .export_judgments import campaign_named

USERNAME = "sim-annotator-{}"
# A flip turns an acceptable answer into an unacceptable one and back.
FLIP = {2: -1, 1: -2, -1: 2, -2: 1, -9: -9}
RANDOM_ANSWERS = (2, 1, -1, -2)
NONE_RETRIES, NONE_WAIT = 40, 0.05

Key = tuple[str, str, str]


def triple_key(head: str, relation: str, tail: str) -> Key:
    return clean_text(head), relation.lower(), normalize_tail(tail)


def read_labels(path: str) -> dict[Key, int]:
    """(head, relation, normalized tail) -> valid, from JSONL lines with those fields."""
    try:
        opened = open_binary(path)
    except FormatError as exc:
        raise CommandError(f"--labels: {exc}.") from exc
    labels: dict[Key, int] = {}
    try:
        for number, raw in enumerate(opened.stream, 1):
            if not raw.strip():
                continue
            where = f"{path}, line {number}"
            try:
                row = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise CommandError(f"{where}: not valid JSON ({exc}).") from exc
            if not isinstance(row, dict):
                raise CommandError(f"{where}: expected an object with head, relation, tail, valid.")
            missing = [k for k in ("head", "relation", "tail", "valid") if k not in row]
            if missing:
                raise CommandError(f"{where}: missing {', '.join(missing)}.")
            if not all(isinstance(row[k], str) for k in ("head", "relation", "tail")):
                raise CommandError(f"{where}: head, relation and tail must be strings.")
            valid = row["valid"]
            if type(valid) is not int or valid not in SKD_VALID_VALUES:
                raise CommandError(f"{where}: valid is {valid!r}, not one of 2, 1, -1, -2, -9.")
            labels[triple_key(row["head"], row["relation"], row["tail"])] = valid
    finally:
        opened.close()
    return labels


@dataclass
class Tally:
    judgments: int = 0
    repeats: int = 0
    refused: int = 0
    from_labels: int = 0
    at_random: int = 0
    flipped: int = 0
    paused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Simulator:
    def __init__(self, *, campaign, labels, noise, limit, deadline, tally, threads) -> None:
        self.campaign, self.labels, self.noise, self.threads = campaign, labels, noise, threads
        self.limit, self.deadline, self.tally = limit, deadline, tally
        # The known answer of gold items: a simulated annotator is right on gold as
        # often as on the labelled triples (1 - noise), like a careful person.
        self.gold = dict(
            Item.objects.filter(campaign=campaign, is_gold=True).values_list(
                "pk", "gold_acceptable"
            )
        )

    def time_is_up(self) -> bool:
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            return True
        return self.limit is not None and self.tally.judgments >= self.limit

    def answer(self, rng: random.Random, lease) -> int:
        if lease.item_id in self.gold:
            truth = 2 if self.gold[lease.item_id] else -2
        else:
            view = selectors.item_view(assignment=lease)  # what the page would show
            truth = self.labels.get(triple_key(view.head, view.relation, view.tail))
        with self.tally.lock:
            if truth is None:
                self.tally.at_random += 1
                return rng.choice(RANDOM_ANSWERS)
            self.tally.from_labels += 1
            if truth != -9 and rng.random() < self.noise:
                self.tally.flipped += 1
                return FLIP[truth]
        return truth

    def _unseen_left(self, user) -> bool:
        seen = Assignment.objects.filter(item=OuterRef("pk"), annotator=user)
        return (
            Item.objects.filter(campaign=self.campaign, slots_free__gt=0)
            .filter(~Exists(seen))
            .exists()
        )

    def next_lease(self, user):
        """assignment_next; with threads, a None is asked again while items are left.

        On PostgreSQL a claim skips items other people's transactions hold locked
        (SKIP LOCKED), so near the end of a campaign it can answer None while an item
        still has a free slot; a person would reload the page, a thread asks again.
        """
        for _ in range(NONE_RETRIES):
            lease = assignment_next(campaign=self.campaign, annotator=user)
            if lease is not None or not self.threads or not self._unseen_left(user):
                return lease
            time.sleep(NONE_WAIT)
        return None

    def step(self, user, rng: random.Random) -> bool:
        """One claim and one answer; False when this annotator is done."""
        try:
            lease = self.next_lease(user)
            if lease is None:
                return False
            value = self.answer(rng, lease)
            result = judgment_submit(assignment_id=lease.pk, annotator=user, value=value)
        except AnnotatorPaused:
            with self.tally.lock:
                self.tally.paused.append(user.username)
            return False
        except CampaignClosed:
            return False
        except (LeaseRefused, AssignmentNotFound):
            with self.tally.lock:
                self.tally.refused += 1
            return True
        with self.tally.lock:
            if result.created:
                self.tally.judgments += 1
            else:
                self.tally.repeats += 1
            if result.paused:
                self.tally.paused.append(user.username)
        return not result.paused

    def round_robin(self, annotators: list, rngs: list[random.Random]) -> None:
        active = list(zip(annotators, rngs, strict=True))
        while active and not self.time_is_up():
            still = []
            for user, rng in active:
                if self.time_is_up():
                    return
                if self.step(user, rng):
                    still.append((user, rng))
            active = still

    def threaded(self, annotators: list, rngs: list[random.Random]) -> list[BaseException]:
        errors: list[BaseException] = []

        def run(user, rng) -> None:
            try:
                while not self.time_is_up() and self.step(user, rng):
                    pass
            except BaseException as exc:  # noqa: BLE001 - reported by the command
                errors.append(exc)
            finally:
                connection.close()

        threads = [
            threading.Thread(target=run, args=pair, name=f"sim-{pair[0].username}")
            for pair in zip(annotators, rngs, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return errors


def simulated_annotators(count: int) -> list:
    """sim-annotator-1..count with the annotator role, made or reused."""
    User = get_user_model()
    users = []
    for n in range(1, count + 1):
        username = USERNAME.format(n)
        user = User.objects.filter(username=username).first()
        if user is None or not is_annotator(user):
            user = user_create_with_role(
                username=username, password=secrets.token_urlsafe(24), role=ANNOTATOR
            )
            user.set_unusable_password()  # nobody signs in as a simulation
            user.save(update_fields=["password"])
        users.append(user)
    return users


class Command(AppCommand):
    help = (
        "Simulate N annotators judging a campaign through the same services as the annotator "
        "page. Answers come from a JSONL file of head, relation, tail, valid (an SKD release "
        "works); a share --noise of them is flipped (acceptable <-> unacceptable); triples "
        "the file lacks get random answers; gold items get their known answer (flipped as "
        "often). Users sim-annotator-1..N are created or reused, and made members of the campaign."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="Campaign name.")
        parser.add_argument("--annotators", type=int, default=5)
        parser.add_argument("--labels", required=True, help="JSONL: head, relation, tail, valid.")
        parser.add_argument(
            "--noise", type=float, default=0.0, help="Share of answers flipped (0 to 1)."
        )
        stop = parser.add_mutually_exclusive_group()
        stop.add_argument("--judgments", type=int, help="Stop after this many judgments.")
        stop.add_argument("--seconds", type=float, help="Stop after this many seconds.")
        parser.add_argument("--seed", type=int, help="Seed of the answers (default: random).")
        parser.add_argument(
            "--threads",
            action="store_true",
            help="One thread per annotator, all at once (PostgreSQL only); default: "
            "round-robin in one thread.",
        )

    def handle(self, *args, **o):
        if o["annotators"] < 1:
            raise CommandError("--annotators must be at least 1.")
        if not 0.0 <= o["noise"] <= 1.0:
            raise CommandError(f"--noise is a share between 0 and 1, not {o['noise']}.")
        if o["judgments"] is not None and o["judgments"] < 1:
            raise CommandError("--judgments must be at least 1.")
        if o["seconds"] is not None and o["seconds"] <= 0:
            raise CommandError("--seconds must be more than 0.")
        if o["threads"] and connection.vendor != "postgresql":
            raise CommandError(
                "--threads needs PostgreSQL (SQLite runs one writer at a time); "
                "leave it out to run the annotators round-robin."
            )
        campaign = campaign_named(o["campaign"])
        if campaign.status != Campaign.Status.OPEN:
            raise CommandError(f"Campaign {campaign.name!r} is closed.")
        labels = read_labels(o["labels"])
        users = simulated_annotators(o["annotators"])
        for user in users:  # only members judge a campaign
            member_add(campaign=campaign, annotator=user)
        seed = random.randrange(2**31) if o["seed"] is None else o["seed"]
        rngs = [random.Random(seed * 1_000_003 + n) for n in range(len(users))]

        tally = Tally()
        started = time.perf_counter()
        simulator = Simulator(
            campaign=campaign,
            labels=labels,
            noise=o["noise"],
            limit=o["judgments"],
            deadline=None if o["seconds"] is None else started + o["seconds"],
            tally=tally,
            threads=o["threads"],
        )
        if o["threads"]:
            errors = simulator.threaded(users, rngs)
            if errors:
                raise CommandError(f"{len(errors)} annotator thread(s) failed: {errors[0]!r}")
        else:
            simulator.round_robin(users, rngs)
        seconds = time.perf_counter() - started

        progress = selectors.campaign_progress(campaign=campaign)
        self.stdout.write(
            f"{tally.judgments:,} judgments by {len(users)} simulated annotators in "
            f"{seconds:.1f} s ({tally.judgments / seconds if seconds else 0:,.1f} judgments/s)"
        )
        self.stdout.write(
            f"  answers: {tally.from_labels:,} from the labels file or gold "
            f"({tally.flipped:,} flipped), {tally.at_random:,} at random (not in the file); "
            f"{tally.refused:,} refused, {tally.repeats:,} repeats"
        )
        if tally.paused:
            self.stdout.write(f"  paused by their gold answers: {', '.join(sorted(tally.paused))}")
        self.stdout.write(
            f"  campaign {campaign.name!r}: {progress.judgments:,} of "
            f"{progress.judgments_wanted:,} judgments ({progress.percent:.1f}%), "
            f"{progress.items_complete:,} of {progress.items:,} items complete"
        )
