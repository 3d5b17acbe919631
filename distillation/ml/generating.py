"""Tails from a trained student for (head, relation) pairs, in batches.

Prompts are COMET sources (``head <relation> [GEN]``) sorted by length and generated in
batches of ``batch_size`` (never one at a time); a causal model's prompts are padded on the
left. Only the new tokens are decoded, each cut at the end-of-sequence token and at the
first newline, stripped, empty ones dropped and duplicates removed (first kept).
Deterministic for a seed, a batch size and a device. No Django import here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .base_model import bf16_supported, resolve_device
from .errors import StudentError
from .formatting import source_text
from .training import STUDENT_FILE

DECODINGS = ("greedy", "beam", "sample")


@dataclass
class GenerationResult:
    tails: list[list[str]]  # per pair, up to n cleaned distinct tails (strip, drop empty)
    new_tokens: int
    seconds: float


def _architecture(model_dir: Path) -> str:
    meta = model_dir / STUDENT_FILE
    if meta.is_file():
        with open(meta, encoding="utf-8") as handle:
            return json.load(handle)["architecture"]
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
    return "seq2seq" if getattr(config, "is_encoder_decoder", False) else "causal"


def load_student(model_dir: Path | str, device: torch.device):
    """(architecture, tokenizer, model) from a folder ``train_student`` wrote (or any
    transformers causal/seq2seq LM folder), in bf16 on a GPU that has it, else fp32."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    model_dir = Path(model_dir)
    try:
        architecture = _architecture(model_dir)
        loader = AutoModelForSeq2SeqLM if architecture == "seq2seq" else AutoModelForCausalLM
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        dtype = torch.bfloat16 if device.type == "cuda" and bf16_supported(device) else None
        model = loader.from_pretrained(
            str(model_dir), local_files_only=True, dtype=dtype or torch.float32
        )
    except Exception as exc:
        raise StudentError(
            f"cannot load the student model in {str(model_dir)!r}. {type(exc).__name__}: {exc}"
        ) from exc
    return architecture, tokenizer, model.to(device).eval()


def _clean(text: str) -> str:
    return text.split("\n", 1)[0].strip()


def generate_tails(
    *,
    model_dir: Path | str,
    pairs: list[tuple[str, str]],
    decoding: str = "greedy",  # greedy | beam | sample
    n: int = 1,
    num_beams: int = 5,
    max_new_tokens: int = 24,
    batch_size: int = 32,
    device: str = "auto",
    seed: int = 0,
    temperature: float = 1.0,
    top_p: float = 0.9,
    on_progress: Callable[[int, int], None] | None = None,
) -> GenerationResult:
    """Up to ``n`` distinct tails per (head, relation) pair: greedy gives one whatever ``n``
    is; beam gives the top ``n`` of max(num_beams, n) beams; sample draws ``n`` samples
    (temperature, top_p). ``on_progress(pairs done, pairs)`` after each batch.
    ``new_tokens`` counts generated tokens up to and including each end-of-sequence;
    ``seconds`` is the time spent generating (loading the model excluded)."""
    if decoding not in DECODINGS:
        raise StudentError(f"decoding must be one of {', '.join(DECODINGS)}; got {decoding!r}")
    if n < 1 or batch_size < 1 or max_new_tokens < 1:
        raise StudentError("n, batch_size and max_new_tokens must be at least 1")
    target = resolve_device(device)
    if not pairs:
        return GenerationResult(tails=[], new_tokens=0, seconds=0.0)
    architecture, tokenizer, model = load_student(model_dir, target)
    started = time.perf_counter()
    causal = architecture == "causal"
    tokenizer.padding_side = "left" if causal else "right"
    eos_id = tokenizer.eos_token_id
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_id
    returns = 1 if decoding == "greedy" else n
    options: dict = {
        "max_new_tokens": max_new_tokens,
        "num_return_sequences": returns,
        "eos_token_id": eos_id,
        "pad_token_id": pad_id,
    }
    # A tail is never empty and never holds a marker: the first token may not end the
    # sequence, and special tokens other than the end (relations, [GEN], padding) are never
    # written; an undertrained student would otherwise often answer nothing. The token a
    # model is forced to start with (BART's <s>) stays allowed.
    forced_bos = model.generation_config.forced_bos_token_id
    allowed = {eos_id, forced_bos}
    suppressed = sorted(t for t in set(tokenizer.all_special_ids) - allowed if t is not None)
    if suppressed:
        options["suppress_tokens"] = suppressed
    if eos_id is not None:
        options["begin_suppress_tokens"] = [eos_id]
    if decoding == "greedy":
        options.update(do_sample=False, num_beams=1)
    elif decoding == "beam":
        options.update(do_sample=False, num_beams=max(num_beams, n), early_stopping=True)
    else:
        options.update(do_sample=True, num_beams=1, temperature=temperature, top_p=top_p)

    sources = [source_text(head, relation) for head, relation in pairs]
    order = sorted(range(len(sources)), key=lambda i: (len(sources[i]), i))
    tails: list[list[str]] = [[] for _ in pairs]
    new_tokens = 0
    torch.manual_seed(seed)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        encoded = tokenizer(
            [sources[i] for i in chunk],
            return_tensors="pt",
            padding=True,
            add_special_tokens=not causal,
        )
        inputs = {
            "input_ids": encoded["input_ids"].to(target),
            "attention_mask": encoded["attention_mask"].to(target),
        }
        with torch.inference_mode():
            output = model.generate(**inputs, **options)
        # A causal model returns prompt + new tokens; a seq2seq one, its decoder start first.
        generated = output[:, inputs["input_ids"].shape[1] :] if causal else output[:, 1:]
        generated = generated.cpu()
        for row in range(generated.shape[0]):
            tokens = generated[row].tolist()
            if eos_id in tokens:
                tokens = tokens[: tokens.index(eos_id) + 1]
            else:
                tokens = [t for t in tokens if t != pad_id]
            new_tokens += len(tokens)
            text = _clean(tokenizer.decode(tokens, skip_special_tokens=True))
            found = tails[chunk[row // returns]]
            if text and text not in found and len(found) < returns:
                found.append(text)
        if on_progress is not None:
            on_progress(min(start + batch_size, len(order)), len(order))
    return GenerationResult(
        tails=tails, new_tokens=new_tokens, seconds=time.perf_counter() - started
    )
