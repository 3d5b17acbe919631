"""Student training throughput: tokens/s and model FLOPs utilization (MFU).

    python bench/student.py                        # cpu
    python bench/student.py --parts gpu            # GPT-2 XL from its config, on CUDA
    python bench/student.py --parts gpu --compile  # the same with torch.compile

cpu  A GPT-2 built from a config (6 layers x 384, the packaged MiniLM's 30k WordPiece
     vocabulary, random weights) fine-tuned through the real path, train_student
     (distillation/ml/training.py: Parquet rows, per-batch tokenization, the Trainer), on
     ATOMIC-2020 triples (../shared/data/atomic2020/references.tsv, synthetic rows where
     that file is missing), batch 32, in fp32 and in bf16 mixed precision where the CPU
     computes bf16 natively, in random batches and once grouped by length
     (group_by_length: less padding). A plain PyTorch loop (same model, same collated
     batches, AdamW, autocast) is the reference that shows the Trainer's overhead. The
     peak FLOP/s for MFU is measured by a 4096^2 matmul in the same dtype (nominal CPU
     peaks are unreliable).
gpu  GPT-2 XL built from its config (1.56B parameters, n_embd 1600, 48 layers, 25 heads,
     random weights) in bf16 mixed precision on CUDA through train_student, fused AdamW
     (the Trainer's default), SDPA attention (transformers' default), batches padded to a
     multiple of 8: COMET-length rows (source+tail ~10-60 tokens, the real workload) at a
     large batch, in random batches and grouped by length, and long rows (~500 tokens,
     tails made long on purpose), since short sequences starve a GPU. A plain loop on
     packed 1024-token sequences is the ceiling. Peak from the device name (H100 SXM /
     H200: 989 bf16 dense TFLOP/s; A100: 312), and an 8192^2 bf16 matmul for what this
     device reaches. Skipped, exit status 2, when there is no CUDA; --gpu-dry-run runs
     its code on the CPU with a tiny model, to check it.

Timing: steady state, from the end of the --warmup-th optimizer step to the last one, from
train_student's own progress reports (so loading, compilation and saving are left out).
Tokens are non-padding source+target tokens. MFU = 6 * N * tokens/s / peak, with N = all
parameters but the position embeddings (the tied token embedding counted once, for the LM
head's matmul; the input lookup is free); attention's own FLOPs (12 * layers * T * d per
token) are left out, which understates MFU for long sequences.
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
REFERENCES = ROOT.parent / "shared" / "data" / "atomic2020" / "references.tsv"

# bf16 dense peaks (no sparsity), by a substring of torch.cuda.get_device_name().
GPU_PEAKS = [
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("GH200", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("A10G", 70e12),
    ("L4", 121e12),
]


# --- data -----------------------------------------------------------------------------------


def triples(count: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """``count`` (head, relation, tail) rows: ATOMIC-2020 references when the file is here
    (repeated and shuffled), else synthetic rows of the same shape."""
    rng = random.Random(seed)
    rows: list[tuple[str, str, str]] = []
    if REFERENCES.is_file():
        with open(REFERENCES, encoding="utf-8", newline="") as handle:
            for record in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                if len(record) == 3 and record[2].strip() and record[2].strip() != "none":
                    rows.append((record[0], record[1], record[2]))
    if not rows:
        verbs = ["eats", "buys", "calls", "paints", "loses", "finds", "visits", "fixes"]
        things = ["a cake", "the car", "PersonY", "a house", "the keys", "a friend", "a bike"]
        relations = ["xIntent", "xNeed", "xWant", "xEffect", "oReact", "xAttr", "HinderedBy"]
        words = [
            "to",
            "be",
            "happy",
            "get",
            "some",
            "rest",
            "go",
            "home",
            "have",
            "money",
            "feel",
            "good",
            "see",
            "it",
            "again",
        ]
        rows = [
            (
                f"PersonX {rng.choice(verbs)} {rng.choice(things)}",
                rng.choice(relations),
                " ".join(rng.choices(words, k=rng.randint(2, 7))),
            )
            for _ in range(5000)
        ]
    out = [rows[rng.randrange(len(rows))] for _ in range(count)]
    return out


def long_triples(count: int, words: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """Rows whose tails are many tails joined, about ``words`` words each."""
    base = triples(count * 8, seed)
    rng = random.Random(seed)
    out = []
    for head, relation, _ in base[:count]:
        tail: list[str] = []
        while len(tail) < words:
            tail += rng.choice(base)[2].split() + [";"]
        out.append((head, relation, " ".join(tail[:words])))
    return out


def write_parquet(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    heads, relations, tails = zip(*rows, strict=True)
    pq.write_table(
        pa.table({"head": list(heads), "relation": list(relations), "tail": list(tails)}), path
    )
    return path


# --- figures ---------------------------------------------------------------------------------


def matmul_peak(device: str, dtype, size: int, seconds: float = 2.0) -> float:
    """FLOP/s of a size^2 x size^2 matmul in ``dtype``: the best of repeated runs."""
    import torch

    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    best = float("inf")
    deadline = time.perf_counter() + seconds
    runs = 0
    while time.perf_counter() < deadline or runs < 3:
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(10 if device == "cuda" else 1):
            a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - started) / (10 if device == "cuda" else 1))
        runs += 1
    return 2 * size**3 / best


def matmul_parameters(model) -> int:
    """Parameters doing matmuls per token: all but the position embeddings."""
    total = model.num_parameters()
    positions = getattr(getattr(model, "transformer", None), "wpe", None)
    return total - (positions.weight.numel() if positions is not None else 0)


class Steady:
    """train_student's progress reports -> steady-state tokens/s after ``warmup`` steps."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.marks: list[tuple[float, int, int]] = []

    def __call__(self, progress) -> None:
        self.marks.append((time.perf_counter(), progress.step, progress.tokens))

    def rate(self) -> tuple[float, int, float]:
        """(tokens/s, steps timed, seconds timed)."""
        start = next(m for m in self.marks if m[1] >= self.warmup)
        end = self.marks[-1]
        seconds = end[0] - start[0]
        return (end[2] - start[2]) / seconds, end[1] - start[1], seconds


def mfu_text(tokens_per_second: float, n: int, peak: float | None) -> str:
    if not peak:
        return "MFU n/a (unknown peak)"
    achieved = 6 * n * tokens_per_second
    return f"{achieved / 1e12:,.2f} TFLOP/s = MFU {100 * achieved / peak:.1f}%"


def run_student(
    base: Path, rows_path: Path, work: Path, warmup: int, steps: int, **config
) -> tuple[float, int, float, object]:
    from distillation.ml.training import StudentConfig, train_student

    steady = Steady(warmup)
    result = train_student(
        config=StudentConfig(
            base_model=str(base),
            max_steps=warmup + steps,
            save_every=0,
            learning_rate=1e-5,
            **config,
        ),
        train_path=rows_path,
        val_path=None,
        work_dir=work,
        on_progress=steady,
    )
    rate, timed, seconds = steady.rate()
    return rate, timed, seconds, result


def raw_loop(model, batches, device: str, bf16: bool, warmup: int, steps: int) -> float:
    """Tokens/s of a plain loop: forward, backward, AdamW step (fused), zero_grad."""
    import torch

    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    context = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16)
    tokens = 0
    started = 0.0
    for index in range(warmup + steps):
        batch = batches[index % len(batches)]
        if index == warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        inputs = {k: v.to(device, non_blocking=True) for k, v in batch.items() if k != "num_tokens"}
        with context:
            loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if index >= warmup:
            tokens += batch["num_tokens"]
    if device == "cuda":
        torch.cuda.synchronize()
    del optimizer
    return tokens / (time.perf_counter() - started)


def collated(folder: Path, rows, batch_size: int, max_length: int, batches: int, multiple=1):
    from transformers import AutoTokenizer

    from distillation.ml.batches import TripleCollator
    from distillation.ml.formatting import add_special_tokens

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    add_special_tokens(tokenizer, sorted({r[1] for r in rows}))
    collator = TripleCollator(tokenizer, "causal", max_length, pad_to_multiple_of=multiple)
    dicts = [{"head": h, "relation": r, "tail": t} for h, r, t in rows]
    return [collator(dicts[i * batch_size : (i + 1) * batch_size]) for i in range(batches)], len(
        tokenizer
    )


def _tokenizer():
    from transformers import AutoTokenizer

    from critic.ml.encoder import resolve_encoder_path

    return AutoTokenizer.from_pretrained(resolve_encoder_path("all-MiniLM-L6-v2"))


# --- cpu -------------------------------------------------------------------------------------


def bench_cpu(args) -> bool | None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from distillation.ml.base_model import cpu_has_native_bf16

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    native = cpu_has_native_bf16()
    print(
        f"cpu: {threads} torch threads, torch {torch.__version__}, native bf16: "
        f"{'yes' if native else 'no'}; data: "
        f"{'ATOMIC-2020 references' if REFERENCES.is_file() else 'synthetic rows'}"
    )
    tokenizer = _tokenizer()
    config = GPT2Config(
        vocab_size=tokenizer.vocab_size,
        n_positions=512,
        n_embd=args.cpu_width,
        n_layer=args.cpu_layers,
        n_head=args.cpu_width // 64,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    n = matmul_parameters(model)
    print(
        f"  model: GPT-2 {args.cpu_layers} layers x {args.cpu_width}, "
        f"{model.num_parameters() / 1e6:.1f}M parameters, N = {n / 1e6:.1f}M for MFU"
    )
    precisions = ["fp32"] + (["bf16"] if native else [])
    peaks = {}
    for precision in precisions:
        dtype = torch.float32 if precision == "fp32" else torch.bfloat16
        peaks[precision] = matmul_peak("cpu", dtype, 4096)
        print(
            f"  peak {precision}: {peaks[precision] / 1e9:,.0f} GFLOP/s "
            "(measured by a 4096^2 matmul)"
        )
    rows = triples(args.cpu_batch * (args.warmup + args.cpu_steps) * 2)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        model.save_pretrained(folder / "base")
        tokenizer.save_pretrained(folder / "base")
        data = write_parquet(folder / "train.parquet", rows)
        runs = [(precision, False) for precision in precisions] + [(precisions[-1], True)]
        for precision, grouped in runs:
            rate, timed, seconds, result = run_student(
                folder / "base",
                data,
                folder / f"run-{precision}-{grouped}",
                args.warmup,
                args.cpu_steps,
                batch_size=args.cpu_batch,
                max_length=64,
                bf16=precision == "bf16",
                device="cpu",
                group_by_length=grouped,
            )
            assert result.precision == precision, result.precision
            order = "grouped by length" if grouped else "random batches"
            print(
                f"  train_student {precision}, batch {args.cpu_batch}, {order}: "
                f"{rate:,.0f} tokens/s ({timed} steps in {seconds:.1f} s, "
                f"{result.tokens / result.steps:,.0f} tokens/step), "
                f"{mfu_text(rate, n, peaks[precision])}"
            )
            if grouped:
                continue
            batches, vocab = collated(
                folder / "base", rows, args.cpu_batch, 64, args.warmup + args.cpu_steps
            )
            reference = GPT2LMHeadModel.from_pretrained(folder / "base")
            reference.resize_token_embeddings(vocab)
            raw = raw_loop(
                reference, batches, "cpu", precision == "bf16", args.warmup, args.cpu_steps
            )
            print(
                f"  plain loop    {precision}, batch {args.cpu_batch}, random batches: "
                f"{raw:,.0f} tokens/s, {mfu_text(raw, n, peaks[precision])}; "
                f"the Trainer path reaches {100 * rate / raw:.0f}% of it"
            )
            del reference, batches
            gc.collect()


# --- gpu -------------------------------------------------------------------------------------


def bench_gpu(args) -> bool | None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    dry = args.gpu_dry_run
    if not dry and not torch.cuda.is_available():
        print("gpu: no CUDA device here; skipped (run this part on a machine with a GPU)")
        return False
    device = "cpu" if dry else "cuda"
    cuda = device == "cuda"
    name = torch.cuda.get_device_name() if cuda else "dry run on the CPU, a tiny GPT-2"
    peak = args.peak_tflops * 1e12 if args.peak_tflops else None
    if peak is None and cuda:
        peak = next((value for key, value in GPU_PEAKS if key in name), None)
    size = 8192 if cuda else 1024
    measured = matmul_peak(device, torch.bfloat16, size)
    print(
        f"gpu: {name}, torch {torch.__version__}, bf16 dense peak "
        f"{f'{peak / 1e12:,.0f} TFLOP/s' if peak else 'unknown (give --peak-tflops)'}; "
        f"a {size}^2 bf16 matmul reaches {measured / 1e12:,.1f} TFLOP/s"
    )
    tokenizer = _tokenizer()
    shape = (
        dict(n_embd=1600, n_layer=48, n_head=25) if cuda else dict(n_embd=64, n_layer=2, n_head=2)
    )
    config = GPT2Config(  # GPT-2 XL; token ids come from the 30k WordPiece vocabulary
        vocab_size=50257,
        n_positions=1024,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        **shape,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = GPT2LMHeadModel(config)
    n = matmul_parameters(model)
    print(
        f"  model: GPT-2 {'XL' if cuda else 'tiny'}, {model.num_parameters() / 1e9:.3f}B "
        f"parameters, N = {n / 1e9:.3f}B for MFU, attention "
        f"{model.config._attn_implementation}, compile {'on' if args.compile else 'off'}; "
        f"data: {'ATOMIC-2020 references' if REFERENCES.is_file() else 'synthetic rows'}"
    )
    steps = args.gpu_steps if cuda else 2
    comet_batch = args.gpu_batch if cuda else 8
    settings = [
        ("COMET rows, random batches", triples, comet_batch, 64, False),
        ("COMET rows, grouped by length", triples, comet_batch, 64, True),
        (
            "long rows",
            lambda k: long_triples(k, 400),
            args.gpu_long_batch if cuda else 2,
            512,
            False,
        ),
    ]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        started = time.perf_counter()
        model.to(torch.bfloat16).save_pretrained(folder / "base")  # loaded back as fp32
        tokenizer.save_pretrained(folder / "base")
        del model
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
        print(f"  (built and saved in {time.perf_counter() - started:.0f} s)")
        for label, make_rows, batch, max_length, grouped in settings:
            rows = make_rows(batch * (args.warmup + steps) * 2)
            data = write_parquet(folder / "train.parquet", rows)
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            rate, timed, seconds, result = run_student(
                folder / "base",
                data,
                folder / f"run-{max_length}-{grouped}",
                args.warmup,
                steps,
                batch_size=batch,
                max_length=max_length,
                bf16=True,
                device=device,
                torch_compile=args.compile,
                group_by_length=grouped,
            )
            memory = torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0
            print(
                f"  train_student {label}, batch {batch}, max_length {max_length}, "
                f"{result.precision}: {rate:,.0f} tokens/s "
                f"({result.tokens / result.steps:,.0f} tokens/step, {timed} steps in "
                f"{seconds:.1f} s, peak memory {memory:,.0f} GiB), {mfu_text(rate, n, peak)}"
            )
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
        # The ceiling: packed 1024-token sequences (no padding), a plain loop.
        reference = GPT2LMHeadModel.from_pretrained(folder / "base", dtype=torch.float32)
        if args.compile:
            reference = torch.compile(reference)
        packed_batch = args.gpu_packed_batch if cuda else 2
        ids = torch.randint(0, tokenizer.vocab_size, (packed_batch, 1024))
        packed = [
            {
                "input_ids": ids,
                "attention_mask": torch.ones_like(ids),
                "labels": ids,
                "num_tokens": ids.numel(),
            }
        ]
        raw = raw_loop(reference, packed, device, True, args.warmup, steps)
        print(
            f"  plain loop, packed {packed_batch} x 1024, bf16: {raw:,.0f} tokens/s, "
            f"{mfu_text(raw, n, peak)}"
        )
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="cpu", help="cpu,gpu")
    parser.add_argument(
        "--warmup", type=int, help="steps left out of the timing (3; 10 with --compile)"
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--cpu-steps", type=int, default=30)
    parser.add_argument("--cpu-batch", type=int, default=32)
    parser.add_argument("--cpu-layers", type=int, default=6)
    parser.add_argument("--cpu-width", type=int, default=384)
    parser.add_argument("--gpu-steps", type=int, default=30)
    parser.add_argument("--gpu-batch", type=int, default=256)
    parser.add_argument("--gpu-long-batch", type=int, default=32)
    parser.add_argument("--gpu-packed-batch", type=int, default=16)
    parser.add_argument("--compile", action="store_true", help="torch.compile on the GPU")
    parser.add_argument("--peak-tflops", type=float, help="bf16 dense peak, if not known")
    parser.add_argument(
        "--gpu-dry-run",
        action="store_true",
        help="run the gpu part's code on the CPU with a tiny model (checks it, times nothing)",
    )
    args = parser.parse_args()
    if args.warmup is None:
        args.warmup = 10 if args.compile else 3
    parts = args.parts.split(",")
    unknown = set(parts) - {"cpu", "gpu"}
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    print(f"{len(os.sched_getaffinity(0))} CPUs")
    skipped = False
    for part, bench in (("cpu", bench_cpu), ("gpu", bench_gpu)):
        if part in parts:
            skipped |= bench(args) is False
    if skipped:
        sys.exit(2)  # a part asked for could not run here


if __name__ == "__main__":
    main()
