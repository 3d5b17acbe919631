from django.core.management.base import CommandError

from core.handlers import AppCommand
from generation.errors import GenerationError
from generation.models import FewShotPool
from generation.services.pools import pool_import_tsv


class Command(AppCommand):
    help = (
        "Add few-shot examples to a pool (created if new) from an ATOMIC TSV file: every head "
        "becomes a seed event, every tail other than 'none' an example of its relation."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--pool", required=True)

    def handle(self, *args, path, pool, **options):
        pool_obj, _ = FewShotPool.objects.get_or_create(name=pool)
        try:
            added = pool_import_tsv(pool=pool_obj, path=path)
        except (OSError, GenerationError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Pool '{pool_obj.name}': {added:,} new examples "
            f"({pool_obj.examples.count():,} in all)."
        )
