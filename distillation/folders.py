"""Where a student run's files live: its folder under the artifact root (named by the run's
artifact key), and the trained model's folder in it, checked against the run's checksum
before anything loads from it.
"""

from __future__ import annotations

from pathlib import Path

from .models import StudentRun

# The card is rewritten as the run's story grows; the weights and tokenizer are what the
# checksum vouches for.
UNCHECKED_FILES = ("README.md", "skd_card.json")


def artifact_root() -> Path:
    from critic.services.config import artifact_root as critic_artifact_root

    return critic_artifact_root()


def run_folder_name(run: StudentRun) -> str:
    """A new run's folder, relative to the artifact root: named by its own key, never by
    its id, which repeats across databases sharing one store (and after a deletion on
    SQLite)."""
    return f"students/{run.artifact_key}"


def run_folder(run: StudentRun) -> Path:
    return artifact_root() / run.folder


def model_folder(run: StudentRun) -> Path:
    return run_folder(run) / "model"


def model_checksum(run: StudentRun) -> str:
    from core.artifacts import artifact_checksum

    return artifact_checksum(model_folder(run), skip=UNCHECKED_FILES)


def verified_model_folder(run: StudentRun) -> Path:
    """The trained model's folder, once its files match the checksum on the run's row
    (runs trained before checksums have none and are not checked); StudentArtifactError
    otherwise."""
    from core.artifacts import artifact_mismatch

    from .errors import StudentArtifactError

    folder = model_folder(run)
    if run.checksum:
        reason = artifact_mismatch(folder, run.checksum, skip=UNCHECKED_FILES)
        if reason is not None:
            raise StudentArtifactError(
                f"Student run '{run}' (artifact key {run.artifact_key}) was not loaded from "
                f"{folder}: {reason}. Its files are not the ones trained for it (another "
                "database sharing this artifact store, or a file changed or removed); "
                "train the run again."
            )
    return folder
