from django.core.management.base import CommandError
from tqdm import tqdm

from annotation.management.commands.create_campaign import corpus_named
from core.handlers import AppCommand
from critic.models import FilterPreset
from distillation.errors import DistillationError
from distillation.models import StudentRun
from distillation.services.runs import student_run_create
from distillation.services.training import student_train


class Command(AppCommand):
    help = (
        "Fine-tune a student (a causal LM such as GPT-2, or a seq2seq such as T5/BART) on a "
        "corpus, or on the cut of a filter preset, in the COMET format. Runs inline with a "
        "progress bar; --resume RUN continues a stopped run from its last checkpoint."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", help="Name of the new run.")
        parser.add_argument("--corpus", help="Corpus name.")
        parser.add_argument("--preset", help="Filter preset of the corpus (default: all of it).")
        parser.add_argument("--base-model", help="Local path or hub id already on this machine.")
        parser.add_argument("--train-split", default="train")
        parser.add_argument("--val-split", default="", help="Split for validation loss.")
        parser.add_argument("--epochs", type=float, default=1.0)
        parser.add_argument("--learning-rate", type=float, default=5e-5)
        parser.add_argument("--batch-size", type=int, default=16)
        parser.add_argument("--grad-accum", type=int, default=1)
        parser.add_argument("--max-length", type=int, default=64)
        parser.add_argument("--max-steps", type=int)
        parser.add_argument("--save-every", type=int, default=200)
        parser.add_argument("--no-bf16", action="store_true", help="Train in fp32.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
        parser.add_argument("--resume", metavar="RUN", help="Continue the run of this name.")

    def handle(self, *args, **o):
        try:
            run = self._run(o)
        except DistillationError as exc:
            raise CommandError(str(exc)) from None
        bar = tqdm(total=None, unit="step", desc="train", file=self.stderr._out)

        def progress(done, total, message="", force=False):
            bar.total = total
            bar.n = done
            bar.set_postfix_str(message.split(" · ", 1)[-1] if message else "")
            bar.refresh()

        try:
            run = student_train(run=run, progress=progress)
        except DistillationError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        self.stdout.write(
            f"Run '{run.name}': {run.steps:,} steps on {run.train_examples:,} triples, "
            f"final loss {_fmt(run.train_loss)}, validation loss {_fmt(run.eval_loss)}, "
            f"{run.tokens_per_second or 0:,.0f} tokens/s; model in {run.folder}/model."
        )

    def _run(self, o) -> StudentRun:
        if o["resume"]:
            run = StudentRun.objects.filter(name=o["resume"]).first()
            if run is None:
                raise DistillationError(f"No student run named '{o['resume']}'.")
            if run.is_trained:
                raise DistillationError(f"Run '{run.name}' has finished training.")
            return run
        missing = [flag for flag in ("name", "corpus", "base_model") if not o[flag]]
        if missing:
            raise DistillationError(
                "Give " + ", ".join("--" + m.replace("_", "-") for m in missing) + " (or --resume)."
            )
        corpus = corpus_named(o["corpus"])
        preset = None
        if o["preset"]:
            preset = FilterPreset.objects.filter(corpus=corpus, name=o["preset"]).first()
            if preset is None:
                names = ", ".join(corpus.filter_presets.values_list("name", flat=True)) or "none"
                raise DistillationError(
                    f"Corpus '{corpus}' has no preset '{o['preset']}' (its presets: {names})."
                )
        return student_run_create(
            name=o["name"],
            corpus=corpus,
            preset=preset,
            base_model=o["base_model"],
            train_split=o["train_split"],
            val_split=o["val_split"],
            epochs=o["epochs"],
            learning_rate=o["learning_rate"],
            batch_size=o["batch_size"],
            grad_accum=o["grad_accum"],
            max_length=o["max_length"],
            max_steps=o["max_steps"],
            save_every=o["save_every"],
            bf16=not o["no_bf16"],
            seed=o["seed"],
            device=o["device"],
        )


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
