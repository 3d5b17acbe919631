from django.core.management.base import CommandError

from annotation.management.commands.create_campaign import corpus_named
from core.handlers import AppCommand
from critic.models import FilterPreset
from critic.services.learning import LEARNING_SAMPLINGS, learning_campaign_create


class Command(AppCommand):
    help = (
        "Create a learning campaign where labels teach the critic most: near a filter "
        "preset's threshold(s) (near_line) or where the critic and the crowd disagree most "
        "(disagreement)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--corpus", required=True, help="Corpus name.")
        parser.add_argument("--sampling", required=True, choices=LEARNING_SAMPLINGS)
        parser.add_argument(
            "--preset", help="near_line: the filter preset whose threshold(s) to draw around."
        )
        parser.add_argument("--name", required=True, help="Campaign name (unique).")
        parser.add_argument("--size", type=int, required=True, help="Triples to sample.")
        parser.add_argument("--k", type=int, default=3, help="Judgments per item (default 3).")
        parser.add_argument(
            "--gold-share", type=float, default=0.1, help="Share of gold (default 0.1)."
        )
        parser.add_argument("--seed", type=int, help="Sampling seed (default: random).")

    def handle(self, *args, **o):
        corpus = corpus_named(o["corpus"])
        preset = None
        if o["preset"]:
            preset = (
                FilterPreset.objects.filter(corpus=corpus, name=o["preset"])
                .select_related("version")
                .first()
            )
            if preset is None:
                known = (
                    ", ".join(
                        FilterPreset.objects.filter(corpus=corpus).values_list("name", flat=True)
                    )
                    or "none yet"
                )
                raise CommandError(
                    f"No preset {o['preset']!r} on {corpus.name} (presets: {known})."
                )
        campaign = learning_campaign_create(
            corpus=corpus,
            sampling=o["sampling"],
            preset=preset,
            name=o["name"],
            size=o["size"],
            judgments_per_item=o["k"],
            gold_share=o["gold_share"],
            seed=o["seed"],
        )
        around = ""
        if campaign.sampling_params.get("threshold") is not None:
            params = campaign.sampling_params
            per = params.get("relation_thresholds") or {}
            around = f" around {params['threshold']}" + (
                f" ({', '.join(f'{k} {v}' for k, v in per.items())})" if per else ""
            )
        self.stdout.write(
            f"learning campaign {campaign.name!r} (id {campaign.pk}) on {corpus.name!r}: "
            f"{campaign.item_count:,} items drawn {campaign.sampling}{around}, "
            f"{campaign.gold_count:,} gold"
        )
