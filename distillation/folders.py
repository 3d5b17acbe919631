"""Where a student run's files live: its folder under the artifact root, and the trained
model's folder in it.
"""

from __future__ import annotations

from pathlib import Path

from .models import StudentRun


def artifact_root() -> Path:
    from critic.services.config import artifact_root as critic_artifact_root

    return critic_artifact_root()


def run_folder(run: StudentRun) -> Path:
    return artifact_root() / run.folder


def model_folder(run: StudentRun) -> Path:
    return run_folder(run) / "model"
