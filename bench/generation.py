"""Teacher throughput: the HTTP client's own overhead, a whole run, in-process generation.

    python bench/generation.py                    # client, run, local (tiny model on CPU)
    python bench/generation.py --parts client --requests 20000 --concurrency 64
    python bench/generation.py --parts gpu        # GPT-2 XL from its config, on a GPU

client  A loopback OpenAI-compatible server (tests/generation/openai_server.py) in its own
        process answers at once; the client (generation/ml/http_teacher.py) sends --requests
        chat requests (n=5) with --concurrency in flight: requests/s is the client's ceiling.
run     The same server behind a whole generation run (generation/teaching.py: prompts,
        cleaning, triples and batch states written to SQLite in groups): requests/s and
        triples/s end to end.
local   The in-process transformers teacher with a tiny GPT-2 built from a config (random
        weights), sampling 16 new tokens for batches of 1, 8 and 32 prompts: new tokens/s.
gpu     GPT-2 XL (1.5B) built from its config (random weights) in bf16 on CUDA, batch sizes
        1, 32, 256, 32 new tokens: new tokens/s. Only where a GPU is present.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SERVER = """
import sys, time
sys.path.insert(0, {root!r})
from tests.generation.openai_server import OpenAIServer
with OpenAIServer() as server:
    print(server.port, flush=True)
    while True:
        time.sleep(3600)
"""


class LoopbackServer:
    """The loopback server in a child process, so it does not share the client's GIL."""

    def __enter__(self) -> str:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER.format(root=str(ROOT))],
            stdout=subprocess.PIPE,
            text=True,
        )
        port = self.process.stdout.readline().strip()
        return f"http://127.0.0.1:{port}/v1"

    def __exit__(self, *exc) -> None:
        self.process.kill()
        self.process.wait()


def bench_client(args) -> None:
    from generation.ml.http_teacher import CompletionRequest, OpenAICompatibleTeacher

    requests = [
        CompletionRequest(key=i, prompt=f"PersonX does thing {i}. Before, PersonX needed", n=5)
        for i in range(args.requests)
    ]
    with LoopbackServer() as url:
        teacher = OpenAICompatibleTeacher(base_url=url, model="m", concurrency=args.concurrency)
        teacher.run_sync(requests[:200], lambda r, c: None)  # warm up
        answered = []
        started = time.perf_counter()
        teacher.run_sync(requests, lambda r, c: answered.append(c))
        seconds = time.perf_counter() - started
    failures = sum(1 for c in answered if isinstance(c, Exception))
    print(
        f"client: {len(answered):,} requests ({args.concurrency} in flight, n=5) in "
        f"{seconds:.2f} s = {len(answered) / seconds:,.0f} requests/s, {failures} failed"
    )


def bench_run(args) -> None:
    with tempfile.TemporaryDirectory() as folder:
        os.environ["SKD_VAR_DIR"] = folder
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0", "--skip-checks"],
            cwd=ROOT,
            env=os.environ,
            check=True,
        )
        import django

        django.setup()
        from corpora.models import Relation
        from generation.models import FewShotExample, FewShotPool
        from generation.services.execution import run_execute
        from generation.services.runs import run_create
        from generation.services.teachers import teacher_create

        pool = FewShotPool.objects.create(name="bench")
        relations = list(Relation.objects.filter(is_skd=True))
        FewShotExample.objects.bulk_create(
            [
                FewShotExample(pool=pool, head=f"PersonX does example {i}", relation=r, tail="t")
                for i in range(10)
                for r in relations
            ]
        )
        heads = [f"PersonX does bench thing {i}" for i in range(args.run_heads)]
        with LoopbackServer() as url:
            teacher = teacher_create(
                name="loopback", base_url=url, model="m", concurrency=args.concurrency
            )
            run = run_create(
                teacher=teacher,
                pool=pool,
                corpus_name="bench",
                relations=[r.name for r in relations],
                heads=heads,
                n_per_pair=5,
            )
            started = time.perf_counter()
            run = run_execute(run=run)
            seconds = time.perf_counter() - started
        print(
            f"run (SQLite): {run.requests_done:,} requests, {run.triples_written:,} triples in "
            f"{seconds:.2f} s = {run.requests_done / seconds:,.0f} requests/s, "
            f"{run.triples_written / seconds:,.0f} triples/s"
        )


def _tiny_teacher(batch_size: int):
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from critic.ml.encoder import resolve_encoder_path
    from generation.ml.local_teacher import TransformersTeacher

    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder_path("all-MiniLM-L6-v2"))
    config = GPT2Config(
        vocab_size=tokenizer.vocab_size,
        n_positions=256,
        n_embd=128,
        n_layer=4,
        n_head=4,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    model = GPT2LMHeadModel(config)
    return TransformersTeacher(
        "tiny", device="cpu", batch_size=batch_size, model=model, tokenizer=tokenizer
    )


def bench_local(args) -> None:
    import torch

    from generation.ml.http_teacher import CompletionRequest

    torch.manual_seed(0)
    for batch_size in (1, 8, 32):
        teacher = _tiny_teacher(batch_size)
        prompts = max(32, batch_size * 4)
        requests = [
            CompletionRequest(
                key=i,
                prompt=f"PersonX does thing {i}. Before that, PersonX needed",
                n=1,
                max_tokens=16,
                stop=(),
                seed=0,
            )
            for i in range(prompts)
        ]
        teacher.run_sync(requests[:batch_size], lambda r, c: None)
        teacher.stats.__init__()
        teacher.run_sync(requests, lambda r, c: None)
        stats = teacher.stats
        print(
            f"local (tiny GPT-2, 4 layers × 128, CPU, {torch.get_num_threads()} threads), batch "
            f"{batch_size:>3}: {stats.tokens_per_second:,.0f} new tokens/s "
            f"({stats.new_tokens:,} tokens in {stats.seconds:.2f} s)"
        )


def bench_gpu(args) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    if not torch.cuda.is_available():
        print("gpu: no CUDA device here; skipped")
        return
    config = GPT2Config(n_embd=1600, n_layer=48, n_head=25)  # GPT-2 XL
    model = GPT2LMHeadModel(config).to("cuda", dtype=torch.bfloat16).eval()
    name = torch.cuda.get_device_name()
    for batch in (1, 32, 256):
        ids = torch.randint(0, config.vocab_size, (batch, 32), device="cuda")
        with torch.inference_mode():
            model.generate(ids, max_new_tokens=4, do_sample=True, pad_token_id=0)
            torch.cuda.synchronize()
            started = time.perf_counter()
            model.generate(
                ids, max_new_tokens=32, min_new_tokens=32, do_sample=True, pad_token_id=0
            )
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        print(
            f"gpu ({name}), GPT-2 XL bf16, batch {batch:>3}: "
            f"{batch * 32 / seconds:,.0f} new tokens/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="client,run,local")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--run-heads", type=int, default=300)
    args = parser.parse_args()
    parts = args.parts.split(",")
    print(f"{len(os.sched_getaffinity(0))} CPUs")
    for part, bench in (
        ("client", bench_client),
        ("run", bench_run),
        ("local", bench_local),
        ("gpu", bench_gpu),
    ):
        if part in parts:
            bench(args)


if __name__ == "__main__":
    main()
