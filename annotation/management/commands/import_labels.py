from django.core.management.base import CommandError

from annotation.errors import AnnotationError
from annotation.models import Campaign
from annotation.services.labels import IMPORTED_ANNOTATOR, campaign_import_labels
from core.handlers import AppCommand

from .create_campaign import corpus_named


class Command(AppCommand):
    help = (
        "Turn the `valid` labels an SKD release carries (2, 1, -1, -2, -9) into judgments of "
        f"the '{IMPORTED_ANNOTATOR}' annotator, in a closed campaign, and aggregate it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--corpus", required=True, help="Corpus name.")
        parser.add_argument("--name", help="Campaign name (default: 'imported: <corpus>').")

    def handle(self, *args, corpus, name, **options):
        corpus_obj = corpus_named(corpus)
        wanted = name or f"imported: {corpus_obj.name}"
        if Campaign.objects.filter(name=wanted).exists():
            raise CommandError(
                f"A campaign named {wanted!r} already exists; choose another with --name."
            )
        try:
            campaign = campaign_import_labels(corpus=corpus_obj, name=name)
        except AnnotationError as exc:
            raise CommandError(str(exc)) from exc
        acceptance = campaign.stats.get("overall", {}).get("acceptance", {})
        rate = acceptance.get("rate")
        self.stdout.write(
            f"campaign {campaign.name!r} (id {campaign.pk}): {campaign.item_count:,} triples "
            f"with imported labels" + (f", {rate:.1%} acceptable" if rate is not None else "")
        )
