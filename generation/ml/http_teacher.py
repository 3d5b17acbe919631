"""A teacher behind any OpenAI-compatible HTTP server (OpenAI, vLLM, llama.cpp, Ollama, TGI).

aiohttp with at most ``concurrency`` requests in flight on one connection pool; timeouts;
retries with exponential backoff and jitter on 429, 5xx, connection errors, answers larger
than ``max_answer_bytes`` and malformed answers (honouring Retry-After); token accounting;
log-probabilities kept when the server gives them. Whatever a server sends, a request ends
as a Completion or a TeacherError naming why. No Django import here.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import aiohttp
import orjson

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_ANSWER_BYTES = 4 * 2**20
MAX_TOKEN_COUNT = 2**31 - 1  # a usage count above this is not a count
READ_CHUNK = 2**16
ERROR_BODY_SHOWN = 300


class TeacherError(Exception):
    """A teacher that cannot work: bad configuration, unreachable, or a request that kept
    failing after every retry (``unreachable`` when every attempt failed to connect)."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


@dataclass(frozen=True)
class CompletionRequest:
    key: object  # the caller's handle (e.g. a batch id), handed back with the result
    prompt: str
    n: int = 1
    temperature: float = 0.9
    top_p: float = 1.0
    max_tokens: int = 32
    stop: tuple[str, ...] = ("\n",)
    seed: int | None = None


@dataclass
class Completion:
    texts: list[str]
    logprobs: list[float | None]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 1
    errors: list[str] = field(default_factory=list)  # what the failed attempts said


class _Retry(Exception):
    """A failed attempt worth another try."""

    def __init__(self, reason: str, wait: float | None = None, *, connection: bool = False):
        super().__init__(reason)
        self.wait = wait
        self.connection = connection


class MalformedAnswer(_Retry):
    """An answer that is not what the API promises; the message names the field."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed answer: {reason}")


class _Stopped(Exception):
    """The caller asked to stop while a request waited to be tried again."""


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _count(usage: dict, name: str) -> int:
    value = usage.get(name)
    if value is None:
        return 0  # servers that do not count tokens leave usage out
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if type(value) is not int or not 0 <= value <= MAX_TOKEN_COUNT:
        raise MalformedAnswer(f"usage.{name} is {_shown(value)}, not a number of tokens")
    return value


def _logprob_sum(values: Iterable[tuple[str, object]], *, skip_null: bool) -> float | None:
    """The sum of token log-probabilities given as (where, value); None when there is none
    or (unless ``skip_null``) one is null, as some servers write for a token they cannot
    score."""
    total, seen, unknown = 0.0, False, False
    for where, value in values:
        if value is None:
            # The completions API gives null for the first token of an echoed prompt.
            unknown = unknown or not skip_null
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MalformedAnswer(f"{where} is {_shown(value)}, not a number")
        try:
            total += float(value)
        except OverflowError:
            raise MalformedAnswer(f"{where} is {_shown(value)}, not a log-probability") from None
        seen = True
    return total if seen and not unknown and math.isfinite(total) else None


def _chat_choice(choice: dict, where: str) -> tuple[str, float | None]:
    message = choice.get("message")
    if not isinstance(message, dict):
        raise MalformedAnswer(f"{where}.message is {_shown(message)}, not an object")
    text = message.get("content")
    if not isinstance(text, str):
        raise MalformedAnswer(f"{where}.message.content is {_shown(text)}, not text")
    logprobs = choice.get("logprobs")
    if logprobs is None:
        return text, None
    if not isinstance(logprobs, dict):
        raise MalformedAnswer(f"{where}.logprobs is {_shown(logprobs)}, not an object")
    tokens = logprobs.get("content")
    if tokens is None:
        return text, None
    if not isinstance(tokens, list):
        raise MalformedAnswer(f"{where}.logprobs.content is {_shown(tokens)}, not a list")
    values = []
    for index, token in enumerate(tokens):
        at = f"{where}.logprobs.content[{index}]"
        if not isinstance(token, dict):
            raise MalformedAnswer(f"{at} is {_shown(token)}, not an object")
        values.append((f"{at}.logprob", token.get("logprob")))
    return text, _logprob_sum(values, skip_null=False)


def _completions_choice(choice: dict, where: str) -> tuple[str, float | None]:
    text = choice.get("text")
    if not isinstance(text, str):
        raise MalformedAnswer(f"{where}.text is {_shown(text)}, not text")
    logprobs = choice.get("logprobs")
    if logprobs is None:
        return text, None
    if not isinstance(logprobs, dict):
        raise MalformedAnswer(f"{where}.logprobs is {_shown(logprobs)}, not an object")
    values = logprobs.get("token_logprobs")
    if values is None:
        return text, None
    at = f"{where}.logprobs.token_logprobs"
    if not isinstance(values, list):
        raise MalformedAnswer(f"{at} is {_shown(values)}, not a list")
    return text, _logprob_sum(
        ((f"{at}[{index}]", value) for index, value in enumerate(values)), skip_null=True
    )


def parse_answer(payload: object, *, endpoint: str, n: int) -> Completion:
    """The completion in a decoded answer of the chat or completions endpoint (at most
    ``n`` choices); MalformedAnswer naming the field when the answer is not one."""
    if not isinstance(payload, dict):
        raise MalformedAnswer("not a JSON object")
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices:
        raise MalformedAnswer(f"no choices (choices is {_shown(choices)})")
    read = _chat_choice if endpoint == "chat" else _completions_choice
    texts, logprobs = [], []
    for index, choice in enumerate(choices[:n]):
        where = f"choices[{index}]"
        if not isinstance(choice, dict):
            raise MalformedAnswer(f"{where} is {_shown(choice)}, not an object")
        text, logprob = read(choice, where)
        texts.append(text)
        logprobs.append(None if logprob is None else float(logprob))
    usage = payload.get("usage")
    if usage is None:
        usage = {}
    elif not isinstance(usage, dict):
        raise MalformedAnswer(f"usage is {_shown(usage)}, not an object")
    return Completion(
        texts=texts,
        logprobs=logprobs,
        prompt_tokens=_count(usage, "prompt_tokens"),
        completion_tokens=_count(usage, "completion_tokens"),
    )


class OpenAICompatibleTeacher:
    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        endpoint: str = "chat",
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        backoff_max: float = 30.0,
        logprobs: bool = True,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        if endpoint not in ("chat", "completions"):
            raise TeacherError(f"endpoint must be 'chat' or 'completions', not {endpoint!r}")
        if not base_url.startswith(("http://", "https://")):
            raise TeacherError(f"base URL {base_url!r} must start with http:// or https://")
        if concurrency < 1:
            raise TeacherError("concurrency must be at least 1")
        if not timeout > 0:
            raise TeacherError("the timeout must be more than 0 seconds")
        if max_answer_bytes < 1:
            raise TeacherError("the largest answer must be at least 1 byte")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.endpoint = endpoint
        self.api_key = api_key
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.logprobs = logprobs
        self.max_answer_bytes = max_answer_bytes

    # --- one request ---------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _body(self, request: CompletionRequest) -> dict:
        body: dict = {
            "model": self.model,
            "n": request.n,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        if request.seed is not None:
            body["seed"] = request.seed
        if self.endpoint == "chat":
            body["messages"] = [{"role": "user", "content": request.prompt}]
            if self.logprobs:
                body["logprobs"] = True
        else:
            body["prompt"] = request.prompt
            if self.logprobs:
                body["logprobs"] = 1
        return body

    def _url(self) -> str:
        path = "/chat/completions" if self.endpoint == "chat" else "/completions"
        return self.base_url + path

    def _too_large(self, size: str) -> _Retry:
        limit = self.max_answer_bytes
        shown = f"{limit / 2**20:g} MB" if limit >= 2**20 else f"{limit:,} bytes"
        return _Retry(f"answer larger than {shown} ({size}); not read further")

    async def _read(self, response: aiohttp.ClientResponse) -> bytes | bytearray:
        """The body, read in pieces up to ``max_answer_bytes``: a larger answer is a failed
        attempt, and the connection is dropped rather than read to its end."""
        length = response.content_length
        if length is not None:
            if length > self.max_answer_bytes:
                raise self._too_large(f"Content-Length {length:,} bytes")
            return await response.read()  # no more than it said (aiohttp holds it to that)
        body = bytearray()
        async for chunk in response.content.iter_chunked(READ_CHUNK):
            body += chunk
            if len(body) > self.max_answer_bytes:
                raise self._too_large(f"more than {len(body):,} bytes sent")
        return body

    def _refusal(self, status: int, body: bytes) -> TeacherError:
        """A status no retry will change, explained."""
        said = bytes(body[:ERROR_BODY_SHOWN]).decode("utf-8", "replace").strip()
        said = f": {said}" if said else ""
        if status in (401, 403):
            return TeacherError(f"{self.base_url} refused the API key (HTTP {status}){said}")
        if status == 404:
            return TeacherError(
                f"{self._url()} answered HTTP 404{said}. Is the base URL right (it usually "
                f"ends in /v1, e.g. http://127.0.0.1:8080/v1) and is the model "
                f"'{self.model}' served there?"
            )
        return TeacherError(f"{self._url()} answered HTTP {status}{said}")

    async def _attempt(self, session: aiohttp.ClientSession, request: CompletionRequest):
        try:
            async with session.post(
                self._url(), data=orjson.dumps(self._body(request)), headers=self._headers()
            ) as response:
                if response.status in RETRYABLE_STATUS:
                    wait = _retry_after(response.headers.get("Retry-After"))
                    raise _Retry(f"HTTP {response.status}", wait)
                if response.status >= 400:
                    raise self._refusal(response.status, await response.content.read(4096))
                body = await self._read(response)
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise _Retry(
                f"connection error: {exc.__class__.__name__}: {exc}", connection=True
            ) from exc
        except aiohttp.ClientError as exc:  # e.g. a response line or header too long
            raise _Retry(f"bad response: {exc.__class__.__name__}: {exc}") from exc
        except TimeoutError as exc:
            raise _Retry(f"timed out after {self.timeout:g} s") from exc
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise MalformedAnswer("not JSON") from exc
        return parse_answer(payload, endpoint=self.endpoint, n=request.n)

    async def complete(
        self,
        session: aiohttp.ClientSession,
        request: CompletionRequest,
        *,
        should_stop: Callable[[], bool] | None = None,
        max_retries: int | None = None,
    ) -> Completion:
        """One request, tried again on failures worth it; TeacherError when it kept failing
        or cannot succeed, _Stopped when ``should_stop`` says so between tries."""
        retries = self.max_retries if max_retries is None else max_retries
        errors: list[str] = []
        unreachable = True
        for attempt in range(1, retries + 2):
            try:
                completion = await self._attempt(session, request)
            except _Retry as retry:
                errors.append(str(retry))
                unreachable = unreachable and retry.connection
                if attempt > retries:
                    raise TeacherError(
                        f"gave up after {attempt} attempts: {'; '.join(errors[-3:])}",
                        unreachable=unreachable,
                    ) from None
                delay = min(self.backoff_max, self.backoff * 2 ** (attempt - 1))
                delay = retry.wait if retry.wait is not None else delay * (0.5 + random.random())
                await asyncio.sleep(min(delay, self.backoff_max))
                if should_stop is not None and should_stop():
                    raise _Stopped from None
                continue
            completion.attempts = attempt
            completion.errors = errors
            return completion
        raise AssertionError("unreachable")

    # --- many requests ------------------------------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=self.concurrency)
        # A host that never answers the connection is given up on sooner than a slow model.
        timeout = aiohttp.ClientTimeout(total=self.timeout, sock_connect=min(self.timeout, 10))
        return aiohttp.ClientSession(connector=connector, timeout=timeout)

    async def run(
        self,
        requests: Iterable[CompletionRequest],
        on_result: Callable[[CompletionRequest, Completion | TeacherError], Awaitable[None] | None],
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        """Send every request, ``concurrency`` at a time, calling ``on_result`` (in this
        event loop, one at a time; it may return an awaitable, awaited before the next) as
        each finishes. ``should_stop`` is polled before each request and between tries:
        when it says so, no new request or retry starts and the requests in flight finish.
        A request stopped that way gets no result."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=self.concurrency)
        lock = asyncio.Lock()

        def stopped() -> bool:
            return should_stop is not None and should_stop()

        async def feed() -> None:
            for request in requests:
                if stopped():
                    break
                await queue.put(request)
            for _ in range(self.concurrency):
                await queue.put(None)

        async def work(session: aiohttp.ClientSession) -> None:
            while (request := await queue.get()) is not None:
                if stopped():
                    continue  # left for a later run
                try:
                    result: Completion | TeacherError = await self.complete(
                        session, request, should_stop=should_stop
                    )
                except _Stopped:
                    continue
                except TeacherError as exc:
                    result = exc
                except Exception as exc:  # noqa: BLE001 - one request's end, never the run's
                    result = TeacherError(f"unexpected error: {exc.__class__.__name__}: {exc}")
                async with lock:
                    outcome = on_result(request, result)
                    if inspect.isawaitable(outcome):
                        await outcome

        async with self._session() as session:
            await asyncio.gather(feed(), *(work(session) for _ in range(self.concurrency)))

    def run_sync(self, requests, on_result, *, should_stop=None) -> None:
        asyncio.run(self.run(requests, on_result, should_stop=should_stop))

    async def check(self) -> None:
        """Fail fast, before any work, unless the configured endpoint answers a real request
        for the configured model: one completion of one token, tried at most three times."""
        request = CompletionRequest(
            key="check", prompt="Say OK.", n=1, temperature=0.0, max_tokens=1, stop=()
        )
        try:
            async with self._session() as session:
                await self.complete(session, request, max_retries=2)
        except TeacherError as exc:
            if exc.unreachable:
                raise TeacherError(f"cannot reach the teacher at {self.base_url}: {exc}") from None
            raise TeacherError(
                f"the teacher at {self.base_url} did not answer a test completion: {exc}"
            ) from None

    def check_sync(self) -> None:
        asyncio.run(self.check())


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
