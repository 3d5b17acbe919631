"""The base model of a student: its architecture (causal or seq2seq), loaded offline with
its tokenizer and the relation tokens, and the device and precision it trains on.
No Django import here; nothing is downloaded (models load with ``local_files_only``).
"""

from __future__ import annotations

import torch

from .errors import StudentError
from .formatting import add_special_tokens

ARCHITECTURES = ("causal", "seq2seq")


def _load_config(base_model: str):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(base_model), local_files_only=True)
    except Exception as exc:
        raise StudentError(
            f"cannot load the base model {str(base_model)!r}: give a local model folder or a "
            "hub id already in the local Hugging Face cache (nothing is downloaded). "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def detect_architecture(base_model: str) -> str:
    """``"seq2seq"`` for an encoder-decoder (T5, BART), else ``"causal"`` (GPT-2 family)."""
    config = _load_config(base_model)
    return "seq2seq" if getattr(config, "is_encoder_decoder", False) else "causal"


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise StudentError(f"device {device!r} asked for, but this machine has no CUDA GPU")
        return torch.device(device)
    raise StudentError(f"device must be auto, cpu or cuda; got {device!r}")


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AVX512-BF16 or AMX), where bf16 is
    faster than fp32 instead of emulated."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # pragma: no cover - a torch without these probes
        return False


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_native_bf16()


def load_tokenizer_and_model(base_model: str, architecture: str, relations: list[str]):
    """The base model in fp32 (mixed precision keeps fp32 master weights), its tokenizer with
    the relation tokens, ``[GEN]``, an end-of-sequence and a padding token, and the model's
    embeddings grown to match."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    loader = AutoModelForSeq2SeqLM if architecture == "seq2seq" else AutoModelForCausalLM
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(base_model), local_files_only=True)
        model = loader.from_pretrained(str(base_model), local_files_only=True, dtype=torch.float32)
    except Exception as exc:
        raise StudentError(
            f"cannot load the base model {str(base_model)!r} as a {architecture} language "
            f"model with its tokenizer (nothing is downloaded). {type(exc).__name__}: {exc}"
        ) from exc
    add_special_tokens(tokenizer, relations)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    for config in (model.config, model.generation_config):
        config.pad_token_id = tokenizer.pad_token_id
        config.eos_token_id = tokenizer.eos_token_id
    if architecture == "seq2seq" and model.config.decoder_start_token_id is None:
        model.config.decoder_start_token_id = tokenizer.pad_token_id
        model.generation_config.decoder_start_token_id = tokenizer.pad_token_id
    return tokenizer, model
