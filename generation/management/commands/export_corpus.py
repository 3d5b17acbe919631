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
        from critic.errors import CriticError
        from critic.models import FilterPreset
        from critic.services.presets import preset_export

        found = (
            FilterPreset.objects.filter(corpus=corpus, name=name).select_related("version").first()
        )
        if found is None:
            known = ", ".join(
                FilterPreset.objects.filter(corpus=corpus).values_list("name", flat=True)
            )
            raise CommandError(
                f"Corpus {corpus.name!r} has no preset named {name!r} "
                f"(presets: {known or 'none yet'})."
            )
        try:
            summary, card = preset_export(preset=found, fmt=fmt, out_path=out)
        except CriticError as exc:
            raise CommandError(str(exc)) from None
        (self.stderr if out == "-" else self.stdout).write(summary.line())
        if card:
            self.stdout.write(f"Dataset card: {card}")
        else:
            self.stderr.write("No dataset card for standard output; export to a file to get one.")
