from django.core.management.base import BaseCommand, CommandError

from generation.exporting import EXPORT_FORMATS, ExportFilter
from generation.models import Corpus, Relation
from generation.services import corpus_export


class Command(BaseCommand):
    help = "Export a corpus, or part of it, as JSONL, TSV, CSV or Parquet ('--out -' for stdout)."

    def add_arguments(self, parser):
        parser.add_argument("corpus", help="Corpus name.")
        parser.add_argument("--format", default="jsonl", choices=EXPORT_FORMATS)
        parser.add_argument("--relation", action="append", default=[], dest="relations")
        parser.add_argument("--split")
        parser.add_argument("--min-score", type=float)
        parser.add_argument("--out", required=True, help="File path, or - for standard output.")

    def handle(self, *args, corpus, format, relations, split, min_score, out, **options):
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
        summary = corpus_export(
            corpus=corpus_obj,
            fmt=format,
            out_path=out,
            flt=ExportFilter(relations=tuple(relations), split=split, min_score=min_score),
        )
        (self.stderr if out == "-" else self.stdout).write(summary.line())
