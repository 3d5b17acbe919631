"""A student trained by several processes at once: every GPU of its host, data-parallel.

``train_student_processes`` launches ``train_student`` under torchrun
(``python -m torch.distributed.run --standalone``) as a child process, one process per
GPU (NCCL), or per CPU when a number is forced (gloo, for tests), and stays the job's
hands while it runs. The files of a launch, in ``work_dir/launch/``:

``spec.json``      what to train (the StudentConfig and the paths), read by every process;
``progress.json``  the main process's latest TrainProgress, polled by the launcher, which
                   hands it to ``on_progress`` (so the job's heartbeat and row move on);
``stop``           made by the launcher when ``should_stop`` says so (a cancel, the end of
                   a slice); the main process sees it after a step and all processes stop
                   there together, saving a checkpoint;
``result.json``    the TrainResult, written by the main process at the end;
``train.log``      the processes' output, whose end is the error when they fail.

Checkpoints are the Trainer's, as in one process: a launch resumes from the latest one.
torchrun is ended (and ends its processes) when the launcher is interrupted, and by the
kernel when the launcher's process dies (PR_SET_PDEATHSIG), so a killed worker leaves no
training behind it to race the retry. No Django import here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .errors import StudentError
from .training import StudentConfig, TrainProgress, TrainResult, _write_json

LAUNCH_FOLDER = "launch"
SPEC_FILE = "spec.json"
PROGRESS_FILE = "progress.json"
STOP_FILE = "stop"
RESULT_FILE = "result.json"
LOG_FILE = "train.log"
ROOT = Path(__file__).resolve().parents[2]
PROGRESS_SECONDS = 0.25  # how often the main process writes its progress, at most


def processes_for(device: str, forced: int = 0) -> int:
    """How many processes train a student: ``forced`` when it is positive, else one per
    GPU of this host when the run may use the GPU (``auto`` or ``cuda``) and there are
    several, else one (a CPU host, or one GPU, trains in the worker's own process)."""
    if forced > 0:
        return forced
    if device not in ("auto", "cuda"):
        return 1
    import torch

    return max(1, torch.cuda.device_count()) if torch.cuda.is_available() else 1


def launch_command(spec: Path, processes: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={processes}",
        "-m",
        "distillation.ml.parallel",
        str(spec),
    ]


# Run before torchrun, in its process: SIGTERM when the launcher dies (PR_SET_PDEATHSIG,
# kept across exec), then exec. Not a preexec_fn, which is unsafe in a threaded worker.
_DIE_WITH_PARENT = """import ctypes, os, sys
try:
    ctypes.CDLL(None).prctl(1, 15)
except (AttributeError, OSError):
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit("the launcher is gone")
os.execv(sys.executable, [sys.executable] + sys.argv[2:])
"""


def _dying_with_this_process(command: list[str]) -> list[str]:
    return [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *command[1:]]


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def train_student_processes(
    *,
    config: StudentConfig,
    train_path: Path,
    val_path: Path | None,
    work_dir: Path,
    processes: int,
    on_progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    heartbeat: Callable[[], None] | None = None,
    poll_seconds: float = 0.5,
) -> TrainResult:
    """``train_student`` on ``processes`` processes under torchrun; see the module's
    docstring. ``heartbeat`` is called on every poll (every ``poll_seconds``), also while
    the processes load the model and before their first step."""
    work_dir = Path(work_dir)
    launch = work_dir / LAUNCH_FOLDER
    launch.mkdir(parents=True, exist_ok=True)
    for name in (PROGRESS_FILE, STOP_FILE, RESULT_FILE):
        (launch / name).unlink(missing_ok=True)  # a previous slice's
    _write_json(
        launch / SPEC_FILE,
        {
            "config": dataclasses.asdict(config),
            "train_path": str(train_path),
            "val_path": str(val_path) if val_path is not None else None,
            "work_dir": str(work_dir),
        },
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    log_path = launch / LOG_FILE
    seen = None
    with open(log_path, "wb") as log:
        child = subprocess.Popen(
            _dying_with_this_process(launch_command(launch / SPEC_FILE, processes)),
            cwd=str(ROOT),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            while True:
                try:
                    code = child.wait(timeout=poll_seconds)
                    break
                except subprocess.TimeoutExpired:
                    pass
                seen = _report(launch, seen, on_progress)
                if heartbeat is not None:
                    heartbeat()
                stop = launch / STOP_FILE
                if should_stop is not None and not stop.exists() and should_stop():
                    stop.touch()
        except BaseException:
            _end(child)
            raise
    _report(launch, seen, on_progress)
    result = _read_json(launch / RESULT_FILE)
    if code != 0 or result is None:
        raise StudentError(
            f"the {processes} training processes failed (exit status {code}); the end of "
            f"{log_path}:\n{_log_tail(log_path)}"
        )
    for key in ("loss_history", "eval_history"):
        result[key] = [tuple(point) for point in result[key]]
    return TrainResult(**result)


def _report(launch: Path, seen, on_progress) -> dict | None:
    state = _read_json(launch / PROGRESS_FILE)
    if state is not None and state != seen and on_progress is not None:
        on_progress(TrainProgress(**state))
    return state if state is not None else seen


def _end(child: subprocess.Popen) -> None:
    """SIGTERM to torchrun, which ends its processes; SIGKILL if it lingers."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=60)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def main(argv: list[str] | None = None) -> None:
    """One process of a launch (run by torchrun): train, and on the main process report."""
    import time

    from .training import train_student

    spec_path = Path((argv or sys.argv[1:])[0])
    launch = spec_path.parent
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    main_process = int(os.environ.get("RANK", "0")) == 0
    written = {"at": 0.0}

    def on_progress(state: TrainProgress) -> None:
        now = time.monotonic()
        if now - written["at"] >= PROGRESS_SECONDS or state.step >= state.total_steps:
            written["at"] = now
            _write_json(launch / PROGRESS_FILE, dataclasses.asdict(state))

    result = train_student(
        config=StudentConfig(**spec["config"]),
        train_path=Path(spec["train_path"]),
        val_path=Path(spec["val_path"]) if spec["val_path"] else None,
        work_dir=Path(spec["work_dir"]),
        on_progress=on_progress,
        should_stop=lambda: (launch / STOP_FILE).exists(),
    )
    if main_process:
        _write_json(launch / RESULT_FILE, dataclasses.asdict(result))
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
