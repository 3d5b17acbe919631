"""The in-process transformers teacher against a tiny GPT-2 built from a config at test time."""

import pytest

from generation.ml.http_teacher import CompletionRequest, TeacherError
from generation.ml.local_teacher import TransformersTeacher


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from critic.ml.encoder import resolve_encoder_path

    folder = tmp_path_factory.mktemp("tiny-gpt2")
    # Any tokenizer on disk will do for a random model; the packaged MiniLM's is offline.
    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder_path("all-MiniLM-L6-v2"))
    config = GPT2Config(
        vocab_size=tokenizer.vocab_size, n_positions=256, n_embd=32, n_layer=2, n_head=2
    )
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_batches_prompts_and_returns_n_samples_with_logprobs(tiny_gpt2):
    teacher = TransformersTeacher(tiny_gpt2, device="cpu", batch_size=4)
    requests = [
        CompletionRequest(key=i, prompt=f"PersonX does thing {i}.", n=3, max_tokens=6, seed=1)
        for i in range(10)
    ]
    results = {}
    teacher.run_sync(requests, lambda r, c: results.__setitem__(r.key, c))
    assert sorted(results) == list(range(10))
    for completion in results.values():
        assert len(completion.texts) == 3 and len(completion.logprobs) == 3
        assert all(lp <= 0 for lp in completion.logprobs)
        assert all("\n" not in text for text in completion.texts)
        assert 0 < completion.completion_tokens <= 18
    # Ten prompts in batches of four: three generate calls, never one prompt at a time.
    assert teacher.stats.prompts == 10 and teacher.stats.batches == 3
    assert teacher.stats.new_tokens > 0


def test_a_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(TeacherError, match="cannot load the teacher model"):
        TransformersTeacher(str(tmp_path / "nope"), device="cpu")


def test_a_prompt_longer_than_the_context_is_cut_from_the_left_not_refused(tiny_gpt2):
    teacher = TransformersTeacher(tiny_gpt2, device="cpu")
    assert teacher.context == 256
    long_prompt = " ".join(f"PersonX does thing {i}." for i in range(200)) + " PersonX"
    request = CompletionRequest(key=0, prompt=long_prompt, n=2, max_tokens=6, seed=1)
    results = {}

    teacher.run_sync([request], lambda r, c: results.__setitem__(r.key, c))

    completion = results[0]
    assert not isinstance(completion, TeacherError), completion
    assert len(completion.texts) == 2 and completion.completion_tokens > 0
