import sys
import time

from django.core.management.base import CommandError

from annotation.exporting import FORMATS, judgment_export_chunks
from annotation.models import Campaign
from core.handlers import AppCommand


def campaign_named(name: str) -> Campaign:
    try:
        return Campaign.objects.get(name=name)
    except Campaign.DoesNotExist:
        known = ", ".join(Campaign.objects.values_list("name", flat=True)[:20]) or "none yet"
        raise CommandError(f"No campaign named {name!r} (campaigns: {known}).") from None


class Command(AppCommand):
    help = (
        "Export a campaign's judgments (one row per judgment) or, with --aggregated, its "
        "item labels as of the last aggregation; '--out -' writes to standard output."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="Campaign name.")
        parser.add_argument("--format", default="jsonl", choices=FORMATS)
        parser.add_argument(
            "--aggregated",
            action="store_true",
            help="One row per item: majority and Dawid-Skene labels with their confidence.",
        )
        parser.add_argument("--out", required=True, help="File path, or - for standard output.")

    def handle(self, *args, campaign, format, aggregated, out, **options):
        campaign_obj = campaign_named(campaign)
        chunks = judgment_export_chunks(campaign=campaign_obj, fmt=format, aggregated=aggregated)
        started = time.perf_counter()
        lines = 0
        if out == "-":
            for chunk in chunks:
                lines += chunk.count(b"\n")
                if self.stdout._out is sys.stdout:
                    sys.stdout.flush()
                    sys.stdout.buffer.write(chunk)
                else:
                    self.stdout.write(chunk.decode(), ending="")
            self.stdout.flush()
        else:
            try:
                with open(out, "wb") as target:
                    for chunk in chunks:
                        lines += chunk.count(b"\n")
                        target.write(chunk)
            except OSError as exc:
                raise CommandError(f"Cannot write {out}: {exc.strerror or exc}.") from exc
        rows = lines - 1 if format == "csv" else lines  # the CSV header is not a row
        what = "item labels" if aggregated else "judgments"
        summary = (
            f"{rows:,} {what} of {campaign_obj.name!r} as {format} to "
            f"{'standard output' if out == '-' else out} in {time.perf_counter() - started:.1f} s"
        )
        (self.stderr if out == "-" else self.stdout).write(summary)
