from django.core.management.base import CommandError

from core.errors import AppError
from core.handlers import AppCommand
from corpora.exporting import EXPORT_FORMATS, ExportFilter
from corpora.models import Corpus, Relation
from corpora.services import corpus_export, corpus_export_preset


class Command(AppCommand):
    help = "Export a corpus, or part of it, as JSONL, TSV, CSV or Parquet ('--out -' for stdout)."

    def add_arguments(self, parser):
        parser.add_argument("corpus", help="Corpus name.")
        parser.add_argument("--format", default="jsonl", choices=EXPORT_FORMATS)
        parser.add_argument("--relation", action="append", default=[], dest="relations")
        parser.add_argument("--split")
        parser.add_argument("--min-score", type=float)
        parser.add_argument(
            "--preset",
            help="A critic filter preset of this corpus: exports what it keeps, with p_valid_model "
            "and rec_* in JSONL, and writes a dataset card beside the file.",
        )
        parser.add_argument("--out", required=True, help="File path, or - for standard output.")

    def handle(self, *args, corpus, format, relations, split, min_score, preset, out, **options):
        try:
            corpus_obj = Corpus.objects.get(name=corpus)
        except Corpus.DoesNotExist:
            known = ", ".join(Corpus.objects.values_list("name", flat=True)[:20]) or "none yet"
            raise CommandError(f"No corpus named {corpus!r} (corpora: {known}).") from None
        unknown = set(relations) - set(
            Relation.objects.filter(name__in=relations).values_list("name", flat=True)
        )
        if unknown:
            raise CommandError(f"Unknown relation(s): {', '.join(sorted(unknown))}.")
        if format == "parquet" and out == "-":
            raise CommandError("Parquet cannot be written to standard output; give a file path.")
        if preset:
            if relations or split or min_score is not None:
                raise CommandError(
                    "--preset cannot be combined with --relation, --split or --min-score."
                )
            self._export_preset(corpus_obj, preset, format, out)
            return
        summary = corpus_export(
            corpus=corpus_obj,
            fmt=format,
            out_path=out,
            flt=ExportFilter(relations=tuple(relations), split=split, min_score=min_score),
        )
        (self.stderr if out == "-" else self.stdout).write(summary.line())

    def _export_preset(self, corpus, name, fmt, out):
        try:
            summary, card = corpus_export_preset(corpus=corpus, preset=name, fmt=fmt, out_path=out)
        except AppError as exc:
            raise CommandError(str(exc)) from None
        (self.stderr if out == "-" else self.stdout).write(summary.line())
        if card:
            self.stdout.write(f"Dataset card: {card}")
        else:
            self.stderr.write("No dataset card for standard output; export to a file to get one.")
