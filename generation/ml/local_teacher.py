"""A teacher loaded in process with transformers: prompts in batches, never one at a time.

Left padding, sampling with the run's temperature/top_p, ``n`` samples per prompt
(``num_return_sequences``), the sum of the chosen tokens' log-probabilities kept per
sample, stop strings applied to the decoded text. No Django import here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from generation.ml.http_teacher import Completion, CompletionRequest, TeacherError

DTYPES = {
    "auto": None,
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


@dataclass
class GenerationStats:
    prompts: int = 0
    batches: int = 0
    new_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds else 0.0


class TransformersTeacher:
    def __init__(
        self,
        name_or_path: str,
        *,
        device: str | None = None,
        dtype: str = "auto",
        batch_size: int = 16,
        model=None,
        tokenizer=None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if dtype not in DTYPES:
            raise TeacherError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        try:
            self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(name_or_path)
            self.model = model or AutoModelForCausalLM.from_pretrained(
                name_or_path, dtype=DTYPES[dtype] or "auto"
            )
        except OSError as exc:
            raise TeacherError(
                f"cannot load the teacher model {name_or_path!r} (a local folder, or a hub id "
                f"already in the local cache; nothing is downloaded): {exc}"
            ) from exc
        self.tokenizer.padding_side = "left"
        # A few-shot prompt longer than the model's context loses its oldest examples, not
        # the question at its end.
        self.tokenizer.truncation_side = "left"
        config = self.model.config
        self.context = getattr(config, "max_position_embeddings", None) or getattr(
            config, "n_positions", None
        )
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model.to(self.device).eval()
        self.batch_size = batch_size
        self.stats = GenerationStats()

    def _generate(self, requests: Sequence[CompletionRequest]) -> list[Completion]:
        first = requests[0]
        limit = None
        if self.context:
            limit = self.context - first.max_tokens
            if limit < 1:
                raise TeacherError(
                    f"max_tokens {first.max_tokens} leaves no room for a prompt in the "
                    f"model's context of {self.context} tokens"
                )
        encoded = self.tokenizer(
            [r.prompt for r in requests],
            return_tensors="pt",
            padding=True,
            truncation=limit is not None,
            max_length=limit,
        ).to(self.device)
        width = encoded["input_ids"].shape[1]
        if first.seed is not None:
            torch.manual_seed(first.seed)
        with torch.inference_mode():
            output = self.model.generate(
                **encoded,
                do_sample=first.temperature > 0,
                temperature=first.temperature if first.temperature > 0 else None,
                top_p=first.top_p if first.temperature > 0 else None,
                max_new_tokens=first.max_tokens,
                num_return_sequences=first.n,
                pad_token_id=self.tokenizer.pad_token_id,
                output_scores=True,
                return_dict_in_generate=True,
            )
        new_tokens = output.sequences[:, width:]
        scores = self.model.compute_transition_scores(
            output.sequences, output.scores, normalize_logits=True
        )
        completions = []
        for index, request in enumerate(requests):
            texts, logprobs, generated = [], [], 0
            for sample in range(request.n):
                row = index * request.n + sample
                tokens = new_tokens[row]
                keep = tokens != self.tokenizer.pad_token_id
                text = self.tokenizer.decode(tokens[keep], skip_special_tokens=True)
                for stop in request.stop:
                    if stop and stop in text:
                        text = text[: text.index(stop)]
                texts.append(text)
                finite = scores[row][keep & torch.isfinite(scores[row])]
                logprobs.append(float(finite.sum()))
                generated += int(keep.sum())
            completions.append(
                Completion(
                    texts=texts,
                    logprobs=logprobs,
                    prompt_tokens=int(encoded["attention_mask"][index].sum()),
                    completion_tokens=generated,
                )
            )
        return completions

    def run_sync(
        self,
        requests,
        on_result: Callable[[CompletionRequest, Completion | TeacherError], None],
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        """Generate for the requests in batches of ``batch_size`` prompts that share their
        sampling settings; call ``on_result`` for each request."""
        batch: list[CompletionRequest] = []

        def flush() -> None:
            started = time.perf_counter()
            results = self._generate(batch)
            self.stats.seconds += time.perf_counter() - started
            self.stats.prompts += len(batch)
            self.stats.batches += 1
            for request, result in zip(batch, results, strict=True):
                self.stats.new_tokens += result.completion_tokens
                on_result(request, result)
            batch.clear()

        for request in requests:
            if should_stop is not None and should_stop():
                break
            if batch and _settings(batch[0]) != _settings(request):
                flush()
            batch.append(request)
            if len(batch) >= self.batch_size:
                flush()
        if batch:
            flush()

    def check_sync(self) -> None:
        """Loaded in __init__; nothing more to check."""


def _settings(request: CompletionRequest) -> tuple:
    return (request.n, request.temperature, request.top_p, request.max_tokens, request.stop)
