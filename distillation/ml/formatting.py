"""How a student sees a triple: COMET's format, ``head <relation> [GEN] tail``.

The relation is one added special token (``<xIntent>``), ``[GEN]`` marks where the tail
starts, and the model ends a tail with its end-of-sequence token. No Django import here.
"""

from __future__ import annotations

GEN_TOKEN = "[GEN]"
PAD_TOKEN = "<pad>"
EOS_TOKEN = "</s>"
FORMAT = "COMET: head <relation> [GEN] tail"


def relation_token(relation: str) -> str:
    return f"<{relation}>"


def source_text(head: str, relation: str) -> str:
    """What the student is given: ``"{head} <{relation}> [GEN]"``."""
    return f"{head} {relation_token(relation)} {GEN_TOKEN}"


def add_special_tokens(tokenizer, relations: list[str]) -> int:
    """Add one special token per relation and ``[GEN]`` (never split, kept out of decoded
    text), an end-of-sequence token when the tokenizer has none (its separator token when it
    has one, as BERT-style tokenizers do, else a new ``</s>``), and a real ``<pad>`` token
    when it has no padding token. Padding never shares the end-of-sequence token, so no id
    is ambiguous when labels are built (they are masked by position anyway). Existing extra
    special tokens (T5's sentinels) are kept. Returns how many tokens were added to the
    vocabulary; resize the model's embeddings to ``len(tokenizer)`` afterwards.
    """
    wanted = [relation_token(r) for r in sorted(set(relations))] + [GEN_TOKEN]
    present = {str(t) for t in tokenizer.extra_special_tokens}
    extra = [t for t in wanted if t not in present]
    tokens: dict = {}
    if extra:
        tokens["extra_special_tokens"] = extra
    if tokenizer.eos_token is None:
        tokens["eos_token"] = tokenizer.sep_token or EOS_TOKEN
    if tokenizer.pad_token is None:
        tokens["pad_token"] = PAD_TOKEN
    if not tokens:
        return 0
    return tokenizer.add_special_tokens(tokens, replace_extra_special_tokens=False)
