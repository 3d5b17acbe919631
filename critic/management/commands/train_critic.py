import time
from argparse import BooleanOptionalAction

from django.core.management.base import CommandError

from annotation.management.commands.create_campaign import corpus_named
from annotation.models import Campaign
from annotation.services.aggregation import campaign_aggregate
from core.handlers import AppCommand
from critic.errors import CriticError
from critic.models import CriticConfig
from critic.services.config import critic_config_update
from critic.services.scoring import corpus_rescore
from critic.services.training import critic_train


class Command(AppCommand):
    help = (
        "Train a new critic version on a corpus's aggregated labels (including labels imported "
        "from an SKD file's `valid` field); activate it if it is not worse than the active one "
        "and rescore the corpus."
    )

    def add_arguments(self, parser):
        parser.add_argument("--corpus", required=True, help="Corpus name.")
        parser.add_argument(
            "--tier", choices=CriticConfig.Tier.values, help="Default: the corpus's setting (fast)."
        )
        parser.add_argument(
            "--encoder", help="Encoder (fast) or base model (cross-encoder): path or hub id."
        )
        parser.add_argument(
            "--name-swap",
            action=BooleanOptionalAction,
            default=None,
            help="The paper's name swap (PersonX/PersonY read as first names, scores averaged "
            "over draws). Default: the corpus's setting (unset: on for the cross-encoder, off "
            "for the fast tier).",
        )
        parser.add_argument(
            "--name-draws", type=int, help="Draws with the name swap. Default: the setting (5)."
        )
        parser.add_argument(
            "--label-weighting",
            choices=CriticConfig.LabelWeighting.values,
            help="How a crowd label's certainty counts: hard, weighted or soft (the Dawid-Skene "
            "posterior as target). Default: the corpus's setting (soft).",
        )
        parser.add_argument(
            "--no-score", action="store_true", help="Do not rescore the corpus after activation."
        )

    def handle(
        self,
        *args,
        corpus,
        tier,
        encoder,
        name_swap,
        name_draws,
        label_weighting,
        no_score,
        **options,
    ):
        corpus_obj = corpus_named(corpus)
        changes = {
            key: value
            for key, value in (
                ("tier", tier),
                ("encoder", encoder),
                ("name_swap", name_swap),
                ("name_draws", name_draws),
                ("label_weighting", label_weighting),
            )
            if value is not None and value != ""
        }
        if changes:
            critic_config_update(corpus=corpus_obj, **changes)
        for campaign in Campaign.objects.filter(corpus=corpus_obj, aggregated_at__isnull=True):
            if campaign.item_count:
                campaign_aggregate(campaign=campaign)
        started = time.perf_counter()
        try:
            version = critic_train(corpus=corpus_obj, queue_rescore=False)
        except CriticError as exc:
            raise CommandError(str(exc)) from None
        metrics = version.metrics
        self.stdout.write(
            f"{corpus_obj.name}: critic {version.label} ({version.tier}) trained on "
            f"{version.label_count:,} labels in {time.perf_counter() - started:.1f} s; held-out "
            f"ROC-AUC {_fmt(metrics.get('roc_auc'))}, AP {_fmt(metrics.get('average_precision'))}, "
            f"Brier {_fmt(metrics.get('brier'))}."
        )
        if metrics.get("chosen"):
            measured = ", ".join(
                f"{tier} {_fmt(auc)}" for tier, auc in metrics["tier_roc_auc"].items()
            )
            self.stdout.write(
                f"Scores with {metrics['chosen']}: ROC-AUC on the {metrics['tier_labels']:,} "
                f"labels both tiers scored out of sample: {measured}."
            )
        self.stdout.write(version.decision)
        if version.is_active and not no_score:
            scoring = corpus_rescore(corpus=corpus_obj)
            if scoring:
                self.stdout.write(
                    f"Scored {scoring.scored_count:,} triples in {scoring.seconds:.1f} s "
                    f"({scoring.scored_count / max(scoring.seconds, 1e-9):,.0f} triples/s)."
                )


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
