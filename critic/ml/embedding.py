"""Embeddings of triples' texts, each distinct text encoded once and kept in the
embedding store (`store.EmbeddingStore`). No Django: callers hand in the encoder,
the store and the chunk's rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .store import text_keys
from .texts import draw_names, head_text, swap_names, tail_text

if TYPE_CHECKING:
    from ..corpus_data import TripleChunk
    from .encoder import Encoder
    from .store import EmbeddingStore


def embed(
    encoder: Encoder, store: EmbeddingStore, texts: list[str], keys: np.ndarray | None = None
) -> np.ndarray:
    """Embeddings of the texts (whose keys may be given), encoding only the ones the
    store lacks."""
    keys = text_keys(texts) if keys is None else keys
    unique_keys, first = np.unique(keys, return_index=True)
    missing = store.missing(unique_keys)
    if missing.any():
        new_texts = [texts[i] for i in first[missing]]
        store.add(unique_keys[missing], encoder.encode(new_texts))
    return store.get(keys)


@dataclass
class ChunkEmbeddings:
    """A chunk's embeddings, each distinct text once: `firsts` (head+relation) and
    `seconds` (tail) as float16 rows, and for every triple the row of each."""

    firsts: np.ndarray
    first_of_row: np.ndarray
    seconds: np.ndarray
    second_of_row: np.ndarray

    def per_row(self) -> tuple[np.ndarray, np.ndarray]:
        return self.firsts[self.first_of_row], self.seconds[self.second_of_row]


def chunk_embeddings(
    encoder: Encoder,
    store: EmbeddingStore,
    chunk: TripleChunk,
    verbalizations: dict,
    *,
    draw: int | None = None,
) -> ChunkEmbeddings:
    """Embeddings of a chunk's triples, encoding only texts the store lacks; with `draw`,
    of that draw of the name swap (`texts.draw_names`)."""
    # A head has triples under many relations and many tails: its head+relation text
    # is built, hashed and looked up once per chunk.
    pairs: dict[tuple[str, int], int] = {}
    first_of_row = np.fromiter(
        (
            pairs.setdefault(pair, len(pairs))
            for pair in zip(chunk.heads, chunk.relation_ids.tolist(), strict=True)
        ),
        dtype=np.int64,
        count=len(chunk),
    )
    firsts = [head_text(head, verbalizations[rel][1]) for head, rel in pairs]
    seconds = [tail_text(tail) for tail in chunk.tails]
    if draw is not None:
        names = {head: draw_names(head, draw) for head in set(chunk.heads)}
        firsts = [
            swap_names(text, names[head]) for text, (head, _) in zip(firsts, pairs, strict=True)
        ]
        seconds = [
            swap_names(text, names[head]) for text, head in zip(seconds, chunk.heads, strict=True)
        ]
    keys, first_seen, second_of_row = np.unique(
        text_keys(seconds), return_index=True, return_inverse=True
    )
    return ChunkEmbeddings(
        embed(encoder, store, firsts),
        first_of_row,
        embed(encoder, store, [seconds[i] for i in first_seen], keys),
        second_of_row,
    )
