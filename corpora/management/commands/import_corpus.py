from django.core.management.base import CommandError
from tqdm import tqdm

from core.handlers import AppCommand
from corpora.formats import FORMATS
from corpora.importing import CorpusImportError
from corpora.services import corpus_import


class Command(AppCommand):
    help = "Import a corpus file (SKD JSONL, JSONL, ATOMIC TSV, CSV, COMET generations; .gz works)."
    # The system checks load every view and with them pandas and the models' libraries:
    # a hundred MB an import does not need.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--corpus", required=True, help="Corpus name (created if new).")
        parser.add_argument("--format", default="auto", choices=("auto", *FORMATS))
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="Import the valid lines; write the rejected ones, with reasons, beside the file.",
        )
        none_tails = parser.add_mutually_exclusive_group()
        none_tails.add_argument(
            "--drop-none",
            dest="drop_none",
            action="store_const",
            const=True,
            help='Leave out rows whose tail is "none" (ATOMIC\'s "no inference"); the '
            "default for ATOMIC TSV.",
        )
        none_tails.add_argument(
            "--keep-none",
            dest="drop_none",
            action="store_const",
            const=False,
            help='Import "none" tails as triples; the default for other formats.',
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, path, corpus, format, skip_invalid, drop_none, no_progress, **options):
        bar = (
            None
            if no_progress
            else tqdm(total=None, unit="B", unit_scale=True, desc="import", file=self.stderr._out)
        )

        def progress(done, total, message="", force=False):
            if bar is None:
                return
            if bar.total != total:
                bar.total = total
            bar.n = done
            bar.set_postfix_str(message, refresh=False)
            bar.refresh()

        try:
            summary = corpus_import(
                path=path,
                corpus_name=corpus,
                fmt=format,
                skip_invalid=skip_invalid,
                drop_none=drop_none,
                progress=progress,
            )
        except CorpusImportError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if bar is not None:
                bar.close()
        for message in summary.errors[:5] if summary.rejected else ():
            self.stderr.write(f"rejected: {message}")
        self.stdout.write(summary.line())
