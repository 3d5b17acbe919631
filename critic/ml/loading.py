"""Loading (and saving) the critic's models from disk: the frozen encoder, the
embedding store, a fast head, a cross-encoder. No Django: callers hand in names and
folders. Each loader keeps what it loaded for the process (the encoder and the store
are costly to open)."""

from __future__ import annotations

import json
import pickle
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .cross import CrossEncoderScorer
    from .encoder import Encoder
    from .fast import FastCritic
    from .store import EmbeddingStore

FAST_FILE = "fast.pkl"
CROSS_RELATIONS_FILE = "relations.pkl"
CROSS_MODEL_FOLDER = "model"
OPTIONS_FILE = "options.json"


@lru_cache(maxsize=2)
def encoder_load(name: str) -> Encoder:
    """The frozen encoder, on the GPU when there is one. OSError or ValueError when the
    model cannot be loaded."""
    import torch

    from .encoder import Encoder

    return Encoder(name, device="cuda" if torch.cuda.is_available() else "cpu")


@lru_cache(maxsize=4)
def embedding_store_load(root: str) -> EmbeddingStore:
    """One store per folder and process: its key index is built once, and it reads
    shards other processes add when a key is missing."""
    from .store import EmbeddingStore

    return EmbeddingStore(Path(root))


@lru_cache(maxsize=1)
def cross_scorer_load(model_dir: str) -> CrossEncoderScorer:
    from .cross import CrossEncoderScorer

    return CrossEncoderScorer(model_dir)


def fast_save(folder: Path, critic: FastCritic, relations: dict[int, int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FAST_FILE).write_bytes(
        pickle.dumps({"critic": critic.to_bytes(), "relations": relations})
    )


def fast_load(folder: Path) -> tuple[FastCritic, dict[int, int]]:
    """A fast head and its relation index (relation id -> column)."""
    from .fast import FastCritic

    saved = pickle.loads((folder / FAST_FILE).read_bytes())
    return FastCritic.from_bytes(saved["critic"]), saved["relations"]


def cross_relations_save(folder: Path, relations: dict[int, int]) -> None:
    (folder / CROSS_RELATIONS_FILE).write_bytes(pickle.dumps(relations))


def cross_load(folder: Path) -> tuple[Path, dict[int, int]]:
    """A cross-encoder's model folder (loaded when it first scores) and relation index."""
    return folder / CROSS_MODEL_FOLDER, pickle.loads((folder / CROSS_RELATIONS_FILE).read_bytes())


def options_save(folder: Path, options: dict) -> None:
    """How the version in `folder` learned (name draws, label weighting): its scoring
    reads triples the same way."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / OPTIONS_FILE).write_text(json.dumps(options, sort_keys=True))


def options_load(folder: Path) -> dict:
    """What `options_save` wrote; {} for a version saved before there were options."""
    path = folder / OPTIONS_FILE
    return json.loads(path.read_text()) if path.exists() else {}
