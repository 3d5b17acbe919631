"""The training rows of a student and their batches.

Rows stay in Arrow: a Parquet file is read column-wise (memory-mapped) and the Trainer's
sampler takes a batch of row indices at a time (``__getitems__``), so millions of rows cost
their Arrow bytes and nothing more. Each batch is tokenized in the collator and padded to
its own longest row (dynamic padding). Batches are random rows; with ``group_by_length``
they are random rows of similar length (``LengthGroupedSampler``), which pads far less
(COMET rows vary from ~10 to ~60 tokens) at the price of batches less mixed in relations,
since tail length goes with the relation (xAttr tails are one word, xIntent's "to ...").

The loss is on the tail and its end-of-sequence token only: a causal model's source
positions and all padding are labelled -100; a seq2seq model reads the source in its
encoder and is labelled with the tail. No Django import here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .base_model import ARCHITECTURES
from .errors import StudentError
from .formatting import source_text

COLUMNS = ("head", "relation", "tail")


class TripleRows(torch.utils.data.Dataset):
    """The head/relation/tail columns of a Parquet file, kept in Arrow. Items are dicts;
    a batch of indices is fetched with one ``take`` (torch's ``__getitems__``)."""

    def __init__(self, path: Path | str) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        path = Path(path)
        if not path.is_file():
            raise StudentError(f"no such Parquet file: {path}")
        try:
            schema = pq.read_schema(path)
        except Exception as exc:
            raise StudentError(f"{path} is not a readable Parquet file: {exc}") from exc
        missing = [c for c in COLUMNS if c not in schema.names]
        if missing:
            raise StudentError(
                f"{path.name} lacks the column(s) {', '.join(missing)} (needs {', '.join(COLUMNS)})"
            )
        table = pq.read_table(path, columns=list(COLUMNS), memory_map=True)
        columns = [pc.fill_null(table[c].cast(pa.string()), "") for c in COLUMNS]
        # Heads repeat once per relation and tail, relations are a handful: as dictionaries
        # they cost an index per row (ATOMIC-10X's 5.8M train rows in ~1/3 of the memory).
        columns[0] = columns[0].dictionary_encode()
        columns[1] = columns[1].dictionary_encode()
        self.table = pa.table(dict(zip(COLUMNS, columns, strict=True)))

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, index: int) -> dict:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices) -> list[dict]:
        return self.table.take(list(indices)).to_pylist()

    def spread(self, count: int) -> TripleRows:
        """`count` rows evenly spread over these (all of them when there are no more)."""
        if count >= len(self):
            return self
        sample = object.__new__(TripleRows)
        sample.table = self.table.take(np.linspace(0, len(self) - 1, count).astype(np.int64))
        return sample

    def lengths(self) -> np.ndarray:
        """Characters of head + tail per row: a free stand-in for token counts."""
        import pyarrow as pa
        import pyarrow.compute as pc

        heads = self.table["head"].cast(pa.string())
        total = pc.add(pc.utf8_length(heads), pc.utf8_length(self.table["tail"]))
        return total.to_numpy().astype(np.int32)

    def relations(self) -> list[str]:
        import pyarrow.compute as pc

        return sorted(str(r) for r in pc.unique(self.table["relation"]).to_pylist())


class LengthGroupedSampler(torch.utils.data.Sampler):
    """Row order for training: random, in batches of rows of similar length, so that a batch
    of short COMET rows is not padded to its one long row.

    Each epoch a permutation is cut into groups of ``GROUP`` batches; a group is sorted by
    length and cut into batches; the batches are shuffled (a short last batch stays last).
    The order depends only on the seed and the epoch (``set_epoch``, called by the Trainer),
    so a resumed epoch skips exactly the batches the interrupted one had trained on.
    """

    GROUP = 64

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size = max(1, batch_size)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.lengths))
        size, span = self.batch_size, self.batch_size * self.GROUP
        batches = []
        for start in range(0, len(order), span):
            group = order[start : start + span]
            group = group[np.argsort(-self.lengths[group], kind="stable")]
            batches.extend(group[i : i + size] for i in range(0, len(group), size))
        last = batches.pop() if batches and len(batches[-1]) < size else None
        for index in rng.permutation(len(batches)):
            yield from batches[index].tolist()
        if last is not None:
            yield from last.tolist()


class TripleCollator:
    """Tokenize and pad one batch of ``{"head", "relation", "tail"}`` rows.

    Causal: ``input_ids`` = source + " " + tail + eos; ``labels`` = -100 on the source and
    on padding, the ids on the tail and eos. The source keeps at most ``max_length - 1``
    tokens and the whole row at most ``max_length`` (a tail cut short loses its eos).
    Seq2seq: the encoder reads the source with the tokenizer's own special tokens; the
    labels are the tail + eos, after ``label_bos`` when given (the token a model such as
    BART is forced to start with when generating: BART's labels are ``<s>`` tail ``</s>``,
    T5's tail ``</s>``); each side at most ``max_length`` tokens.
    Padding is on the right, to the batch's longest row (rounded up to
    ``pad_to_multiple_of``). ``num_tokens`` is the batch's non-padding source+target
    tokens, for throughput; the trainer removes it before the forward pass.
    """

    def __init__(
        self,
        tokenizer,
        architecture: str,
        max_length: int,
        pad_to_multiple_of: int = 1,
        label_bos: int | None = None,
    ) -> None:
        if architecture not in ARCHITECTURES:
            raise StudentError(f"architecture must be causal or seq2seq; got {architecture!r}")
        if max_length < 2:
            raise StudentError("max_length must be at least 2 tokens")
        self.tokenizer = tokenizer
        self.architecture = architecture
        self.max_length = max_length
        self.multiple = max(1, pad_to_multiple_of)
        self.pad_id = tokenizer.pad_token_id
        self.eos_id = tokenizer.eos_token_id
        self.label_prefix = [] if label_bos is None else [label_bos]
        if self.pad_id is None or self.eos_id is None:
            raise StudentError("the tokenizer needs a padding and an end-of-sequence token")

    def __call__(self, rows: list[dict]) -> dict:
        sources = [source_text(r["head"], r["relation"]) for r in rows]
        if self.architecture == "causal":
            tails = [" " + r["tail"].strip() for r in rows]
            source_ids = self.tokenizer(sources, add_special_tokens=False)["input_ids"]
            tail_ids = self.tokenizer(tails, add_special_tokens=False)["input_ids"]
            inputs, labels = [], []
            for source, tail in zip(source_ids, tail_ids, strict=True):
                source = source[: self.max_length - 1]
                target = (tail + [self.eos_id])[: self.max_length - len(source)]
                inputs.append(source + target)
                labels.append([-100] * len(source) + target)
            ids, mask = self._pad(inputs, self.pad_id)
            label_tensor, _ = self._pad(labels, -100)
            return {
                "input_ids": ids,
                "attention_mask": mask,
                "labels": label_tensor,
                "num_tokens": int(mask.sum()),
            }
        tails = [r["tail"].strip() for r in rows]
        encoded = self.tokenizer(sources, truncation=True, max_length=self.max_length)
        targets = [
            (self.label_prefix + tail)[: self.max_length - 1] + [self.eos_id]
            for tail in self.tokenizer(tails, add_special_tokens=False)["input_ids"]
        ]
        ids, mask = self._pad(encoded["input_ids"], self.pad_id)
        label_tensor, label_mask = self._pad(targets, -100)
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "labels": label_tensor,
            "num_tokens": int(mask.sum()) + int(label_mask.sum()),
        }

    def _pad(self, rows: list[list[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        width = -(-width // self.multiple) * self.multiple
        out = torch.full((len(rows), width), value, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, : len(row)] = 1
        return out, mask
