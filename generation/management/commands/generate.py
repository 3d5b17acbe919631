from pathlib import Path

from django.core.management.base import CommandError
from tqdm import tqdm

from core.handlers import AppCommand
from corpora.models import Corpus
from corpora.relations import SKD_RELATIONS
from generation.errors import GenerationError
from generation.limits import run_settings_check
from generation.ml.http_teacher import TeacherError
from generation.models import FewShotPool, GenerationRun, Teacher
from generation.services.execution import run_execute
from generation.services.runs import run_create, run_estimate, run_report
from generation.services.teachers import teacher_check


class Command(AppCommand):
    help = (
        "Have a teacher write triples into a corpus: inferences for given heads (a file, or a "
        "corpus's events) or for new events it writes first. Runs inline with a progress bar; "
        "--resume RUN continues a run that stopped (nothing is written twice). The teacher is "
        "checked before anything is created; one process at a time executes a run. Exits "
        "non-zero when batches failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--teacher", help="Teacher name (create_teacher).")
        parser.add_argument("--corpus", help="Output corpus (created if new).")
        parser.add_argument("--pool", help="Few-shot pool (import_pool).")
        parser.add_argument("--relations", nargs="+", default=SKD_RELATIONS)
        heads = parser.add_mutually_exclusive_group()
        heads.add_argument("--heads-file", help="One head per line.")
        heads.add_argument("--from-corpus", help="Use the heads of this corpus.")
        heads.add_argument("--events", type=int, default=0, help="New event prompts first.")
        parser.add_argument("--n", type=int, default=5, help="Tails per (head, relation).")
        parser.add_argument("--k", type=int, default=5, help="Few-shot examples per prompt.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--temperature", type=float)
        parser.add_argument("--top-p", type=float)
        parser.add_argument("--max-tokens", type=int)
        parser.add_argument("--resume", type=int, metavar="RUN", help="Continue run RUN.")
        parser.add_argument("--estimate-only", action="store_true")

    def handle(self, *args, **o):
        try:
            run, checked = self._run(o)
        except (TeacherError, GenerationError) as exc:
            raise CommandError(str(exc)) from None
        estimate = run_estimate(run)
        cost = f", about ${estimate.cost:,.2f}" if estimate.cost is not None else ""
        self.stdout.write(
            f"Run {run.pk}: {estimate.requests:,} requests to send, about "
            f"{estimate.prompt_tokens:,} prompt and {estimate.completion_tokens:,} completion "
            f"tokens{cost}."
        )
        if o["estimate_only"]:
            return
        bar = tqdm(total=run.batches.count(), unit="req", desc="generate", file=self.stderr._out)

        def progress(done, total, message=""):
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            run = run_execute(run=run, progress=progress, check=not checked)
        except (TeacherError, GenerationError) as exc:
            raise CommandError(f"{exc} (run {run.pk}: --resume {run.pk} continues it)") from None
        finally:
            bar.close()
        report = run_report(run)
        dropped = ", ".join(f"{k} {v:,}" for k, v in sorted(report["dropped"].items())) or "none"
        self.stdout.write(
            f"Run {run.pk} into '{run.corpus.name}': {report['triples']:,} triples, "
            f"{report['events']:,} new events, {report['requests']:,} requests, "
            f"{report['prompt_tokens'] + report['completion_tokens']:,} tokens; dropped: "
            f"{dropped}; failed batches: {report['batches'].get('failed', 0):,}"
            + (f"; cost ${report['cost']:,.4f}." if report["cost"] is not None else ".")
        )
        failed = report["batches"].get("failed", 0)
        if failed:
            raise CommandError(
                f"{failed:,} batches failed (run {run.pk}: --resume {run.pk} tries them again)."
            )

    def _run(self, o) -> tuple[GenerationRun, bool]:
        """The run, and whether its teacher was checked here already."""
        if o["resume"]:
            try:
                return GenerationRun.objects.get(pk=o["resume"]), False
            except GenerationRun.DoesNotExist:
                raise CommandError(f"No generation run {o['resume']}.") from None
        for option in ("teacher", "corpus", "pool"):
            if not o[option]:
                raise CommandError(f"--{option} is required (or --resume RUN).")
        # The run's rules before anything is asked of the teacher (run_create checks them too).
        run_settings_check(
            event_prompts=o["events"],
            n_per_pair=o["n"],
            k_examples=o["k"],
            seed=o["seed"],
            temperature=o["temperature"],
            top_p=o["top_p"],
            max_tokens=o["max_tokens"],
        )
        teacher = _named(Teacher, o["teacher"], "create_teacher")
        pool = _named(FewShotPool, o["pool"], "import_pool")
        heads = None
        if o["heads_file"]:
            heads = Path(o["heads_file"]).read_text(encoding="utf-8").splitlines()
        source = _named(Corpus, o["from_corpus"], "import_corpus") if o["from_corpus"] else None
        if not o["estimate_only"]:
            # Before the run and its corpus exist: a teacher that cannot answer leaves nothing.
            self.stderr.write(teacher_check(teacher))
        run = run_create(
            teacher=teacher,
            pool=pool,
            corpus_name=o["corpus"],
            relations=o["relations"],
            heads=heads,
            source_corpus=source,
            event_prompts=o["events"],
            n_per_pair=o["n"],
            k_examples=o["k"],
            seed=o["seed"],
            temperature=o["temperature"],
            top_p=o["top_p"],
            max_tokens=o["max_tokens"],
        )
        return run, not o["estimate_only"]


def _named(model, name: str, command: str):
    try:
        return model.objects.get(name=name)
    except model.DoesNotExist:
        raise CommandError(
            f"No {model._meta.verbose_name} named '{name}' (make one with {command})."
        ) from None
