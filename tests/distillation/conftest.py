"""Tiny students built from configs at test time (random weights, nothing downloaded).

Both use the packaged MiniLM's BERT WordPiece tokenizer, which works offline: its [SEP]
serves as the end-of-sequence token and its [PAD] as padding (T5's decoder starts with it).
"""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for the module: tiny models gain little from more, and on a busy
    two-core machine OpenMP's spinning threads make steps 5x slower at random."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tokenizer():
    from transformers import AutoTokenizer

    from critic.ml.encoder import resolve_encoder_path

    return AutoTokenizer.from_pretrained(resolve_encoder_path("all-MiniLM-L6-v2"))


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> str:
    """A 2-layer, 32-wide GPT-2 folder (model + tokenizer)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("tiny-gpt2")
    tokenizer = _tokenizer()
    config = GPT2Config(
        vocab_size=tokenizer.vocab_size,
        n_positions=128,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory) -> str:
    """A 2-layer, 32-wide T5 folder (model + tokenizer)."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    folder = tmp_path_factory.mktemp("tiny-t5")
    tokenizer = _tokenizer()
    config = T5Config(
        vocab_size=tokenizer.vocab_size,
        d_model=32,
        d_ff=64,
        d_kv=16,
        num_layers=2,
        num_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.sep_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def _write_triples(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    heads, relations, tails = zip(*rows, strict=True) if rows else ((), (), ())
    table = pa.table(
        {
            "head": pa.array(heads, pa.string()),
            "relation": pa.array(relations, pa.string()),
            "tail": pa.array(tails, pa.string()),
        }
    )
    pq.write_table(table, path)
    return path


@pytest.fixture(scope="session")
def write_triples():
    """write_triples(path, [(head, relation, tail), ...]) -> path: a Parquet file with the
    string columns head, relation, tail."""
    return _write_triples


REPETITIVE = [
    (f"PersonX eats {food}", relation, tail)
    for food in ("bread", "rice", "soup", "fruit")
    for relation, tail in (("xIntent", "to be full"), ("xNeed", "to buy food"))
]


@pytest.fixture(scope="session")
def student_corpus(tmp_path_factory) -> tuple[Path, Path]:
    """(train, val) Parquet files: eight triples repeated, two relations, one tail each."""
    folder = tmp_path_factory.mktemp("student-corpus")
    train = _write_triples(folder / "train.parquet", REPETITIVE * 16)
    val = _write_triples(folder / "val.parquet", REPETITIVE)
    return train, val
