"""What an OpenAI-compatible server answers is read defensively: any JSON, of any type in any
field, is either an answer or a failed attempt naming what was wrong, never a crash."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generation.ml.http_teacher import (
    Completion,
    CompletionRequest,
    MalformedAnswer,
    OpenAICompatibleTeacher,
    TeacherError,
    parse_answer,
)
from tests.generation.openai_server import Faults, OpenAIServer, ServerState

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _maybe(strategy):
    """A field that is either its expected shape or any JSON at all."""
    return st.one_of(strategy, JSON)


TOKEN = _maybe(st.fixed_dictionaries({}, optional={"token": JSON, "logprob": JSON}))
CHOICE = _maybe(
    st.fixed_dictionaries(
        {},
        optional={
            "message": _maybe(st.fixed_dictionaries({}, optional={"content": _maybe(st.text())})),
            "text": _maybe(st.text()),
            "logprobs": _maybe(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "content": _maybe(st.lists(TOKEN, max_size=4)),
                        "token_logprobs": _maybe(st.lists(JSON, max_size=4)),
                    },
                )
            ),
        },
    )
)
USAGE = _maybe(
    st.fixed_dictionaries({}, optional={"prompt_tokens": JSON, "completion_tokens": JSON})
)
PAYLOAD = _maybe(
    st.fixed_dictionaries(
        {}, optional={"choices": _maybe(st.lists(CHOICE, max_size=4)), "usage": USAGE}
    )
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=PAYLOAD, endpoint=st.sampled_from(["chat", "completions"]), n=st.integers(1, 3))
def test_any_json_is_an_answer_or_a_malformed_answer_and_nothing_else(payload, endpoint, n):
    try:
        completion = parse_answer(payload, endpoint=endpoint, n=n)
    except MalformedAnswer as exc:
        assert str(exc).startswith("malformed answer: ")
        return
    assert isinstance(completion, Completion)
    assert 1 <= len(completion.texts) <= n
    assert all(isinstance(text, str) for text in completion.texts)
    assert len(completion.logprobs) == len(completion.texts)
    assert all(
        lp is None or (type(lp) is float and math.isfinite(lp)) for lp in completion.logprobs
    )
    for count in (completion.prompt_tokens, completion.completion_tokens):
        assert type(count) is int and 0 <= count < 2**31


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ([], "not a JSON object"),
        ({"choices": []}, "no choices"),
        ({"choices": [{"message": {"content": None}}]}, "choices[0].message.content"),
        ({"choices": [{"message": "hi"}]}, "choices[0].message"),
        (
            {"choices": [{"message": {"content": "a"}}], "usage": {"prompt_tokens": "n/a"}},
            "usage.prompt_tokens is 'n/a'",
        ),
        ({"choices": [{"message": {"content": "a"}}], "usage": []}, "usage"),
        (
            {
                "choices": [
                    {"message": {"content": "a"}, "logprobs": {"content": [{"logprob": "x"}]}}
                ]
            },
            "choices[0].logprobs.content[0].logprob",
        ),
        (
            {"choices": [{"message": {"content": "a"}}], "usage": {"completion_tokens": 1e29}},
            "usage.completion_tokens",
        ),
    ],
)
def test_a_malformed_answer_names_the_field(payload, words):
    with pytest.raises(MalformedAnswer, match=words.replace("[", r"\[").replace("]", r"\]")):
        parse_answer(payload, endpoint="chat", n=1)


def test_a_null_token_logprob_leaves_the_logprob_unknown_and_keeps_the_answer():
    payload = {
        "choices": [
            {"message": {"content": "a"}, "logprobs": {"content": [{"logprob": None}]}},
            {"message": {"content": "b"}, "logprobs": {"content": [{"logprob": -1}]}},
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": None},
    }
    completion = parse_answer(payload, endpoint="chat", n=2)
    assert completion.texts == ["a", "b"] and completion.logprobs == [None, -1.0]
    assert completion.prompt_tokens == 3 and completion.completion_tokens == 0


@pytest.mark.parametrize("kind", ["odd-usage", "null-logprob"])
def test_an_answer_with_an_odd_field_is_a_failed_attempt_not_the_end_of_the_run(kind):
    """The first answers carry the odd field; the run goes on, each request answered."""
    state = ServerState(faults=Faults(first_n=3, kind=kind))
    requests = [CompletionRequest(key=i, prompt=f"PersonX does thing {i}.", n=2) for i in range(6)]
    results = {}
    with OpenAIServer(state) as server:
        teacher = OpenAICompatibleTeacher(
            base_url=server.url, model="m", concurrency=1, backoff=0.001
        )
        teacher.run_sync(requests, lambda request, result: results.__setitem__(request.key, result))
    assert sorted(results) == list(range(6))
    assert all(isinstance(result, Completion) for result in results.values())
    if kind == "odd-usage":
        # Retried: the three odd answers were failed attempts that name the field.
        assert sum(result.attempts - 1 for result in results.values()) == 3
        assert "usage.prompt_tokens is 'n/a'" in results[0].errors[0]
    else:
        # Kept, with the log-probability unknown.
        assert [results[i].logprobs for i in range(3)] == [[None, None]] * 3
        assert results[5].logprobs == [-0.75, -0.75]


def test_an_answer_that_is_always_odd_fails_its_request_with_the_reason():
    state = ServerState(faults=Faults(share=1.0, kind="odd-usage"))
    results = {}
    with OpenAIServer(state) as server:
        teacher = OpenAICompatibleTeacher(
            base_url=server.url, model="m", max_retries=2, backoff=0.001
        )
        teacher.run_sync(
            [CompletionRequest(key=0, prompt="PersonX waits.")],
            lambda request, result: results.__setitem__(request.key, result),
        )
    assert isinstance(results[0], TeacherError)
    assert "gave up after 3 attempts" in str(results[0]) and "prompt_tokens" in str(results[0])
