"""A real Celery worker serving `gpu` for tests/critic/test_rescore_workers.py, run as
`python -m tests.critic.rescore_worker NAME`. Its cross-encoder scores in small chunks
(SKD_TEST_RANGE_CHUNK triples) and waits SKD_TEST_SCORE_DELAY seconds before each, so that
a range lasts long enough for the test to kill the worker in the middle of one; the scores
themselves are the model's."""

import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from critic.services import ranges  # noqa: E402
from critic.tiers.cross_encoder import LoadedCrossEncoder  # noqa: E402

ranges.RANGE_CHUNK = int(os.environ["SKD_TEST_RANGE_CHUNK"])
DELAY = float(os.environ["SKD_TEST_SCORE_DELAY"])
_score_inputs = LoadedCrossEncoder.score_inputs


def _slow_score_inputs(self, inputs):
    time.sleep(DELAY)
    return _score_inputs(self, inputs)


LoadedCrossEncoder.score_inputs = _slow_score_inputs

if __name__ == "__main__":
    # What the first range would import (transformers loads its modules lazily), imported
    # now, while the test trains its critic.
    from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: F401
    from transformers.models.bert import modeling_bert  # noqa: F401

    from config.celery import app
    from critic.ml import cross  # noqa: F401

    # The solo pool runs each task in this process, so the range's owner is this pid.
    app.worker_main(
        [
            "worker",
            "-Q",
            "gpu",
            "-P",
            "solo",
            "-c",
            "1",
            "-n",
            sys.argv[1],
            "-l",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ]
    )
