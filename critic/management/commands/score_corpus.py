from django.core.management.base import CommandError
from tqdm import tqdm

from annotation.management.commands.create_campaign import corpus_named
from core.handlers import AppCommand
from critic.errors import CriticError
from critic.services.scoring import corpus_rescore


class Command(AppCommand):
    help = (
        "Score every triple of a corpus with its active critic version "
        "(a new score set, put in force when complete)."
    )

    def add_arguments(self, parser):
        parser.add_argument("corpus", help="Corpus name.")

    def handle(self, *args, corpus, **options):
        corpus_obj = corpus_named(corpus)
        bar = tqdm(total=corpus_obj.triple_count, unit="triple", unit_scale=True, file=self.stderr)

        def progress(done, total, message=""):
            bar.update(done - bar.n)

        try:
            scoring = corpus_rescore(corpus=corpus_obj, progress=progress)
        except CriticError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        self.stdout.write(
            f"{corpus_obj.name}: scored {scoring.scored_count:,} triples with critic "
            f"{scoring.version.label} in {scoring.seconds:.1f} s "
            f"({scoring.scored_count / max(scoring.seconds, 1e-9):,.0f} triples/s)."
        )
