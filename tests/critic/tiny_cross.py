"""A tiny cross-encoder base model built from a config (random weights, the packaged
MiniLM's tokenizer): what the rescoring tests train a critic version from."""

from pathlib import Path


def tiny_cross_encoder_build(folder: Path) -> str:
    from transformers import AutoTokenizer, BertConfig, BertModel

    from critic.ml.encoder import resolve_encoder_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder_path("all-MiniLM-L6-v2"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def cross_encoder_version(corpus, base_model: str):
    """A trained, active cross-encoder version of the corpus (no rescoring queued)."""
    from critic.models import CriticConfig
    from critic.services.config import critic_config_update
    from critic.services.training import critic_train

    critic_config_update(corpus=corpus, tier=CriticConfig.Tier.CROSS_ENCODER, encoder=base_model)
    return critic_train(corpus=corpus, queue_rescore=False)
