from pathlib import Path

from django.core.management.base import CommandError
from tqdm import tqdm

from core.handlers import AppCommand
from corpora.models import Relation
from distillation.errors import DistillationError
from distillation.limits import send_settings_check
from distillation.models import StudentEvaluation, StudentRun
from distillation.services.evaluations import evaluation_create, evaluation_execute
from distillation.services.outputs import DEFAULT_GOLD_SHARE, evaluation_send_to_annotation


class Command(AppCommand):
    help = (
        "Have a trained student write tails for held-out heads (a split of its corpus, or a "
        "file of heads); the outputs become a corpus of their own, measured by the critic, "
        "diversity, novelty and BLEU/ROUGE-L against the references."
    )

    def add_arguments(self, parser):
        parser.add_argument("--run", required=True, help="Student run name.")
        heads = parser.add_mutually_exclusive_group()
        heads.add_argument("--split", default="test", help="Heads of this split (default test).")
        heads.add_argument("--heads-file", help="One head per line.")
        parser.add_argument("--max-heads", type=int, default=200)
        parser.add_argument("--relations", nargs="+", help="Default: those it was trained on.")
        parser.add_argument(
            "--decoding", choices=StudentEvaluation.Decoding.values, default="greedy"
        )
        parser.add_argument("--n", type=int, default=1, help="Tails per (head, relation).")
        parser.add_argument("--beams", type=int, default=5)
        parser.add_argument("--max-new-tokens", type=int, default=24)
        parser.add_argument("--temperature", type=float, default=1.0)
        parser.add_argument("--top-p", type=float, default=0.9)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--send-to-annotation",
            action="store_true",
            help="Create a blind annotation campaign over the outputs (neutral name, the "
            "teacher's tails for the same heads and relations mixed in, shuffled).",
        )
        parser.add_argument(
            "--send-size", type=int, help="Outputs to judge (default: all of them)."
        )
        parser.add_argument("--judgments-per-item", type=int, default=3, help="k (default 3).")
        parser.add_argument(
            "--gold-share", type=float, default=DEFAULT_GOLD_SHARE, help="Default 0.1."
        )
        parser.add_argument(
            "--no-teacher", action="store_true", help="Judge the student's outputs alone."
        )

    def handle(self, *args, **o):
        send = {
            "size": o["send_size"],
            "judgments_per_item": o["judgments_per_item"],
            "gold_share": o["gold_share"],
            "with_teacher": not o["no_teacher"],
        }
        if o["send_to_annotation"]:
            send_settings_check(
                size=send["size"],
                judgments_per_item=send["judgments_per_item"],
                gold_share=send["gold_share"],
            )
        run = StudentRun.objects.filter(name=o["run"]).first()
        if run is None:
            raise CommandError(f"No student run named '{o['run']}'.")
        heads = None
        if o["heads_file"]:
            path = Path(o["heads_file"])
            if not path.is_file():
                raise CommandError(f"{path}: no such file.")
            heads = path.read_text(encoding="utf-8").splitlines()
        relations = None
        if o["relations"]:
            relations = list(Relation.objects.filter(name__in=o["relations"]))
            unknown = set(o["relations"]) - {r.name for r in relations}
            if unknown:
                raise CommandError(f"Unknown relation(s): {', '.join(sorted(unknown))}.")
        bar = tqdm(total=None, unit="pair", desc="generate", file=self.stderr._out)

        def progress(done, total, message="", force=False):
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            evaluation = evaluation_create(
                run=run,
                heads_split=o["split"],
                heads=heads,
                max_heads=o["max_heads"],
                relations=relations,
                decoding=o["decoding"],
                n_per_pair=o["n"],
                num_beams=o["beams"],
                max_new_tokens=o["max_new_tokens"],
                temperature=o["temperature"],
                top_p=o["top_p"],
                seed=o["seed"],
            )
            evaluation = evaluation_execute(evaluation=evaluation, progress=progress)
        except DistillationError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        m = evaluation.metrics
        overall, critic = m["overall"], (m.get("critic") or {}).get("overall") or {}
        self.stdout.write(
            f"Evaluation {evaluation.pk}: {m['written']:,} triples for {evaluation.pairs:,} pairs "
            f"into corpus '{evaluation.corpus.name}'; critic acceptance "
            f"{_fmt(critic.get('acceptance'))}, distinct-2 {_fmt(overall['distinct_2'])}, "
            f"novelty {_fmt(overall['novelty'])}, BLEU {_fmt(overall['bleu'])}, "
            f"ROUGE-L {_fmt(overall['rouge_l'])}."
        )
        if o["send_to_annotation"]:
            campaign = evaluation_send_to_annotation(evaluation=evaluation, **send)
            self.stdout.write(f"Campaign '{campaign.name}': {campaign.item_count:,} items.")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
