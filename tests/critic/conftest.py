from pathlib import Path

import pytest

from annotation.services import campaign_import_labels
from generation.models import Corpus
from generation.services import corpus_import

DEMO = Path(__file__).resolve().parents[2] / "demo" / "demo_corpus.jsonl"


@pytest.fixture
def labelled_corpus(db) -> Corpus:
    """The shipped demo corpus (347 SKD-format triples) with its `valid` labels imported
    as judgments of the "imported" annotator, aggregated."""
    corpus_import(path=DEMO, corpus_name="demo", fmt="skd")
    corpus = Corpus.objects.get(name="demo")
    campaign_import_labels(corpus=corpus)
    return corpus
