"""A tiny, untrained GPT-2 written at setup so student runs can be tried on any machine
(no model is downloaded: the machine may be offline)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

DEMO_BASE_MODEL = Path(settings.VAR_DIR) / "models" / "tiny-gpt2"


def demo_base_model_ensure(path: Path = DEMO_BASE_MODEL) -> Path:
    """Build a small GPT-2 from its config (random weights) with the packaged MiniLM
    tokenizer, once. Good for trying the pipeline, not for knowledge."""
    if (path / "config.json").exists():
        return path
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from critic.ml.encoder import resolve_encoder_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder_path("all-MiniLM-L6-v2"))
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=512, n_embd=128, n_layer=4, n_head=4)
    partial = path.with_name(path.name + ".partial")
    GPT2LMHeadModel(config).save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.replace(path)
    return path
