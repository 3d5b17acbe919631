import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from annotation.errors import AnnotationError
from annotation.models import Campaign
from annotation.services.campaigns import campaign_create
from annotation.services.membership import member_add
from core.handlers import AppCommand
from corpora.models import Corpus


def corpus_named(name: str) -> Corpus:
    try:
        return Corpus.objects.get(name=name)
    except Corpus.DoesNotExist:
        known = ", ".join(Corpus.objects.values_list("name", flat=True)[:20]) or "none yet"
        raise CommandError(f"No corpus named {name!r} (corpora: {known}).") from None


class Command(AppCommand):
    help = (
        "Create an annotation campaign: sample SIZE triples of a corpus (and gold items) "
        "for K judgments each."
    )

    def add_arguments(self, parser):
        parser.add_argument("--corpus", required=True, help="Corpus name.")
        parser.add_argument("--name", required=True, help="Campaign name (unique).")
        parser.add_argument("--size", type=int, required=True, help="Triples to sample.")
        parser.add_argument("--k", type=int, default=3, help="Judgments per item (default 3).")
        parser.add_argument(
            "--sampling", choices=Campaign.Sampling.values, default=Campaign.Sampling.UNIFORM
        )
        parser.add_argument(
            "--purpose",
            choices=Campaign.Purpose.values,
            default=Campaign.Purpose.LEARNING,
            help="audit: labels that measure the critic without bias and are never trained on.",
        )
        parser.add_argument(
            "--gold-share",
            type=float,
            default=0.1,
            help="Share of what an annotator is shown that is gold (0 for none; default 0.1).",
        )
        parser.add_argument(
            "--gold-reference",
            help="Human-written triples (ATOMIC TSV, JSONL, ...) for known-good gold items.",
        )
        parser.add_argument("--lease-seconds", type=int, default=600)
        parser.add_argument("--instructions", default="")
        parser.add_argument("--seed", type=int, help="Sampling seed (default: random).")
        parser.add_argument(
            "--annotators",
            default="",
            help="Comma-separated usernames of annotators to make members (only members "
            "judge a campaign; others join through a join link).",
        )
        parser.add_argument(
            "--items-per-session",
            type=int,
            help="Judgments per session of a join link's annotator (default: no sessions).",
        )
        parser.add_argument(
            "--training-size",
            type=int,
            default=0,
            help="Gold items each newcomer answers first, with the expected answer shown "
            "(default 0: no training).",
        )
        parser.add_argument(
            "--qualification-threshold",
            type=float,
            default=0.8,
            help="Share of a training round that must be right (default 0.8).",
        )
        parser.add_argument(
            "--training-tries", type=int, default=2, help="Training rounds allowed (default 2)."
        )
        parser.add_argument(
            "--straight-line-run",
            type=int,
            default=15,
            help="The same answer this many times in a row pauses an annotator (default 15).",
        )
        parser.add_argument(
            "--speed-floor",
            type=float,
            default=0.25,
            help="A median time per judgment below this share of the crowd's pauses an "
            "annotator (default 0.25; 0: never).",
        )

    def handle(self, *args, **o):
        corpus = corpus_named(o["corpus"])
        usernames = [name.strip() for name in o["annotators"].split(",") if name.strip()]
        User = get_user_model()
        missing = sorted(
            set(usernames)
            - set(User.objects.filter(username__in=usernames).values_list("username", flat=True))
        )
        if missing:
            raise CommandError(f"--annotators: no user named {', '.join(missing)}.")
        reference = o["gold_reference"]
        if reference and not Path(reference).is_file():
            raise CommandError(f"--gold-reference {reference}: no such file.")
        started = time.perf_counter()
        try:
            campaign = campaign_create(
                corpus=corpus,
                name=o["name"],
                size=o["size"],
                sampling=o["sampling"],
                purpose=o["purpose"],
                judgments_per_item=o["k"],
                gold_share=o["gold_share"],
                gold_reference=reference,
                lease_seconds=o["lease_seconds"],
                instructions=o["instructions"],
                seed=o["seed"],
                items_per_session=o["items_per_session"],
                training_size=o["training_size"],
                qualification_threshold=o["qualification_threshold"],
                training_tries=o["training_tries"],
                straight_line_run=o["straight_line_run"],
                speed_floor=o["speed_floor"],
            )
        except AnnotationError as exc:
            raise CommandError(str(exc)) from exc
        for user in User.objects.filter(username__in=usernames):
            member_add(campaign=campaign, annotator=user)
        seconds = time.perf_counter() - started
        self.stdout.write(
            f"campaign {campaign.name!r} (id {campaign.pk}) on corpus {corpus.name!r}: "
            f"{campaign.item_count:,} items, {campaign.gold_count:,} gold, "
            f"{campaign.judgments_per_item} judgments each, {campaign.sampling} sampling, "
            f"seed {campaign.seed}, created in {seconds:.1f} s"
            + (f"; members: {', '.join(usernames)}" if usernames else "")
        )
