"""How good and how varied a student's tails are: distinct-n, novelty, BLEU, ROUGE-L.

Scales: ``distinct_n`` and ``novelty`` are shares in [0, 1]; ``bleu`` and ``rouge_l`` are
both on sacrebleu's 0-100 scale (rouge-score's F-measure times 100), so the two reference
measures read alike. No Django import here.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from corpora.formats import normalize_tail


def distinct_n(texts: list[str], n: int) -> float | None:
    """Distinct n-grams over all n-grams in ``texts`` (lowercased whitespace tokens; an
    n-gram never spans two texts), in [0, 1]; None when there is no n-gram at all (one-word
    tails have no bigrams: their distinct-2 is undefined, not 0)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        words = text.lower().split()
        for i in range(len(words) - n + 1):
            seen.add(tuple(words[i : i + n]))
            total += 1
    return len(seen) / total if total else None


def novelty(generated: list[str], training: set[str]) -> float:
    """Share in [0, 1] of the ``generated`` tails (each counted, repeats included) whose
    normalized form (``normalize_tail``: the corpus's own rule for two tails being the
    same, so case, spacing and final punctuation do not count) is not in ``training``;
    0.0 when nothing was generated. ``training`` is taken as given: build it once from
    the training tails normalized the same way (it is often millions of tails, looked up
    by many calls), e.g. ``{normalize_tail(t) for t in tails}``."""
    if not generated:
        return 0.0
    return sum(normalize_tail(g) not in training for g in generated) / len(generated)


def _with_references(
    hypotheses: list[str], references: list[list[str]]
) -> list[tuple[str, list[str]]]:
    if len(hypotheses) != len(references):
        raise ValueError("one list of references per hypothesis")
    return [
        (h, kept)
        for h, refs in zip(hypotheses, references, strict=True)
        if (kept := [r for r in refs if r and r.strip()])
    ]


def bleu(hypotheses: list[str], references: list[list[str]]) -> float | None:
    """Corpus BLEU-4 (sacrebleu's defaults: 13a tokenization, exponential smoothing) on the
    0-100 scale, each hypothesis scored against all of its own references (any number per
    pair). Pairs without references are left out; None when no pair has one."""
    import sacrebleu

    scored = _with_references(hypotheses, references)
    if not scored:
        return None
    width = max(len(refs) for _, refs in scored)
    # sacrebleu takes reference streams; a pair with fewer references pads with None.
    streams = [[refs[k] if k < len(refs) else None for _, refs in scored] for k in range(width)]
    return float(sacrebleu.corpus_bleu([h for h, _ in scored], streams).score)


@lru_cache(maxsize=1)
def _rouge_l_scorer():
    """One scorer per process (making one logs a line each time)."""
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(hypotheses: list[str], references: list[list[str]]) -> float | None:
    """ROUGE-L F-measure (rouge-score: lowercased alphanumeric tokens, no stemming) on the
    0-100 scale: for each pair the best F over its references, averaged over pairs.
    Pairs without references are left out; None when no pair has one."""
    scored = _with_references(hypotheses, references)
    if not scored:
        return None
    scorer = _rouge_l_scorer()
    best: Iterable[float] = (
        max(scorer.score(ref, hyp)["rougeL"].fmeasure for ref in refs) for hyp, refs in scored
    )
    return 100.0 * sum(best) / len(scored)
