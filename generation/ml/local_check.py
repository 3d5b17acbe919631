"""Check a transformers teacher without loading its weights: its tokenizer and config.

Cheap enough for the web server (no torch tensors, no weights); the worker that runs the
teacher loads the model itself (local_teacher). No Django import here.
"""

from __future__ import annotations

from generation.ml.http_teacher import TeacherError


def local_model_check(name_or_path: str) -> str:
    """What was found, in words; TeacherError naming what is missing or unfit."""
    from transformers import AutoConfig, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as exc:
        raise TeacherError(
            f"cannot load the tokenizer and config of {name_or_path!r} (a local folder, or a "
            f"hub id already in the local cache; nothing is downloaded): {exc}"
        ) from exc
    if config.is_encoder_decoder or _not_causal(config):
        raise TeacherError(
            f"{name_or_path!r} is a {config.model_type} model that does not write text "
            "left to right (a causal language model, e.g. GPT-2 or Llama, is needed)"
        )
    context = getattr(config, "max_position_embeddings", None) or getattr(
        config, "n_positions", None
    )
    architecture = ", ".join(config.architectures or []) or config.model_type
    return (
        f"loaded the tokenizer ({len(tokenizer):,} tokens) and config ({architecture}"
        + (f", a context of {context:,} tokens" if context else "")
        + f") of {name_or_path}"
    )


def _not_causal(config) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
