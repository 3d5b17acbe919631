"""The OpenAI-compatible teacher against a real HTTP server on loopback that misbehaves."""

import pytest

from generation.ml.http_teacher import CompletionRequest, OpenAICompatibleTeacher, TeacherError
from tests.generation.openai_server import Faults, OpenAIServer, ServerState, reply_for


def _requests(count: int, n: int = 3) -> list[CompletionRequest]:
    return [CompletionRequest(key=i, prompt=f"PersonX does thing {i}.", n=n) for i in range(count)]


def _run(teacher, requests) -> dict:
    results = {}
    teacher.run_sync(requests, lambda request, result: results.__setitem__(request.key, result))
    return results


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_every_request_answered_with_texts_logprobs_and_tokens(endpoint):
    with OpenAIServer() as server:
        teacher = OpenAICompatibleTeacher(
            base_url=server.url, model="m", endpoint=endpoint, concurrency=4
        )
        results = _run(teacher, _requests(20))
    assert len(results) == 20
    for key, completion in results.items():
        assert completion.texts == [reply_for(f"PersonX does thing {key}.", i) for i in range(3)]
        assert all(lp is not None and lp < 0 for lp in completion.logprobs)
        assert completion.prompt_tokens > 0 and completion.completion_tokens == 12
        assert completion.attempts == 1


@pytest.mark.parametrize("kind", ["429", "500", "malformed"])
def test_retries_until_the_server_answers(kind):
    state = ServerState(faults=Faults(first_n=6, kind=kind, share=0.2, seed=1))
    with OpenAIServer(state) as server:
        teacher = OpenAICompatibleTeacher(
            base_url=server.url, model="m", concurrency=3, backoff=0.01, max_retries=8
        )
        results = _run(teacher, _requests(15))
    assert set(results) == set(range(15))
    assert all(not isinstance(r, TeacherError) for r in results.values())
    assert sum(r.attempts - 1 for r in results.values()) == state.requests[f"fault {kind}"] >= 6
    assert any(r.errors for r in results.values())


def test_a_slow_server_times_out_and_the_retry_succeeds():
    state = ServerState(faults=Faults(first_n=1, kind="hang", hang_seconds=3))
    with OpenAIServer(state) as server:
        teacher = OpenAICompatibleTeacher(
            base_url=server.url, model="m", concurrency=1, timeout=0.5, backoff=0.01
        )
        results = _run(teacher, _requests(2))
    assert results[0].attempts == 2 and "timed out" in results[0].errors[0]


def test_gives_up_with_a_clear_error_after_the_retries():
    state = ServerState(faults=Faults(share=1.0, kind="500"))
    with OpenAIServer(state) as server:
        teacher = OpenAICompatibleTeacher(
            base_url=server.url, model="m", backoff=0.001, max_retries=2
        )
        results = _run(teacher, _requests(2))
    assert all(isinstance(r, TeacherError) for r in results.values())
    assert "gave up after 3 attempts" in str(results[0]) and "HTTP 500" in str(results[0])


def test_configuration_errors_surface_before_any_work():
    with pytest.raises(TeacherError, match="http:// or https://"):
        OpenAICompatibleTeacher(base_url="localhost:8000", model="m")
    with pytest.raises(TeacherError, match="endpoint"):
        OpenAICompatibleTeacher(base_url="http://x", model="m", endpoint="embeddings")
    # Nothing listens on port 9 of loopback.
    with pytest.raises(TeacherError, match="cannot reach the teacher"):
        OpenAICompatibleTeacher(base_url="http://127.0.0.1:9/v1", model="m").check_sync()
    with OpenAIServer(ServerState(require_key="right")) as server:
        with pytest.raises(TeacherError, match="refused the API key"):
            OpenAICompatibleTeacher(base_url=server.url, model="m", api_key="wrong").check_sync()
        OpenAICompatibleTeacher(base_url=server.url, model="m", api_key="right").check_sync()


def test_stopping_starts_no_new_request():
    with OpenAIServer(ServerState(delay=0.02)) as server:
        teacher = OpenAICompatibleTeacher(base_url=server.url, model="m", concurrency=2)
        results = {}

        def on_result(request, result):
            results[request.key] = result

        teacher.run_sync(_requests(50), on_result, should_stop=lambda: len(results) >= 5)
    assert 5 <= len(results) < 20


@pytest.mark.parametrize("says_its_length", [False, True])
def test_an_answer_over_the_size_cap_is_a_failed_attempt_and_is_not_read_to_its_end(
    says_its_length,
):
    state = ServerState(faults=Faults(share=1.0, kind="huge", huge_length_header=says_its_length))
    with OpenAIServer(state) as server:
        teacher = OpenAICompatibleTeacher(
            base_url=server.url,
            model="m",
            concurrency=2,
            max_retries=1,
            backoff=0.001,
            max_answer_bytes=2**20,
        )
        results = _run(teacher, _requests(3))
    assert all(isinstance(result, TeacherError) for result in results.values())
    assert "gave up after 2 attempts" in str(results[0])
    assert "answer larger than 1 MB" in str(results[0])
    # Six answers of 50 MB each were started; the client hung up on each early on (what
    # went out is the cap plus what the sockets' buffers took).
    assert len(state.huge_sent) == 6
    assert max(state.huge_sent) < 20 * 2**20, state.huge_sent


CLIENT_PEAK = """
import resource, sys
sys.path.insert(0, {root!r})
from generation.ml.http_teacher import CompletionRequest, OpenAICompatibleTeacher
teacher = OpenAICompatibleTeacher(
    base_url={url!r}, model="m", concurrency=4, max_retries=1, backoff=0.001
)
requests = [CompletionRequest(key=i, prompt=f"PersonX does thing {{i}}.") for i in range(8)]
teacher.run_sync(requests[:1], lambda r, c: None)  # libraries warmed up
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
failed = []
teacher.run_sync(requests, lambda r, c: failed.append(str(c)))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) // 1024, len(failed), failed[0])
"""


def test_fifty_megabyte_answers_keep_the_client_in_bounded_memory():
    """Sixteen answers of 50 MB (8 requests, 2 attempts each, 4 at a time): a client that
    read them whole would grow by hundreds of MB; the default 4 MB cap keeps it small."""
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    state = ServerState(faults=Faults(skip_first=1, share=1.0, kind="huge"))
    with OpenAIServer(state) as server:
        out = subprocess.run(
            [sys.executable, "-c", CLIENT_PEAK.format(root=root, url=server.url)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert out.returncode == 0, out.stderr
    growth_mb, failed, message = out.stdout.split(" ", 2)
    assert int(failed) == 8 and "answer larger than 4 MB" in message
    assert int(growth_mb) < 64, f"peak memory grew by {growth_mb} MB"
