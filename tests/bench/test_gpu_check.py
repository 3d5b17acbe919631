"""The prepared GPU check (bench/gpu.sh) runs its whole code on the CPU with tiny models,
so it is ready, not rotten, on the day a GPU is lent."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.one_leg
def test_the_gpu_check_runs_through_on_the_cpu_with_tiny_models():
    # The WordPiece trained on the rows is what a GPU image's Python without the
    # project's requirements uses; the packaged MiniLM's is loaded as everywhere else.
    done = subprocess.run(
        ["bash", "bench/gpu.sh", "--tiny", "--trained-tokenizer"],
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    table = done.stdout[done.stdout.index("| check") :]
    for check, count in (
        ("cross-encoder scoring", 3),
        ("cross-encoder training", 1),
        ("student fine-tuning", 4),
    ):
        assert table.count(f"| {check} ") == count, table
    assert "FAILED" not in table and "0 row(s) failed" in done.stdout
    assert "tokenizer: a WordPiece trained on the rows" in done.stdout


def test_the_gpu_check_without_a_gpu_says_so_and_exits_2():
    import torch

    if torch.cuda.is_available():
        return
    done = subprocess.run(
        ["bash", "bench/gpu.sh", "--parts", "cross"],
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "no CUDA device here" in done.stdout


def test_the_trained_tokenizer_marks_the_pair_and_loads_back(tmp_path):
    from transformers import AutoTokenizer

    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu.py")
    gpu = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gpu_check", gpu)  # its dataclasses look their module up
    spec.loader.exec_module(gpu)
    rows = [("PersonX eats bread.", "xIntent", "to be full")] * 50
    gpu.trained_tokenizer(rows, vocabulary=200).save_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    encoded = tokenizer("PersonX eats bread.", "to be full")
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    assert tokens[0] == "[CLS]" and tokens.count("[SEP]") == 2 and "[UNK]" not in tokens
    assert set(encoded["token_type_ids"]) == {0, 1}
    assert tokenizer.pad_token_id is not None and tokenizer.sep_token_id is not None
