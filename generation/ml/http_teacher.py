"""A teacher behind any OpenAI-compatible HTTP server (OpenAI, vLLM, llama.cpp, Ollama, TGI).

aiohttp with at most ``concurrency`` requests in flight on one connection pool; timeouts;
retries with exponential backoff and jitter on 429, 5xx, connection errors and malformed
bodies (honouring Retry-After); token accounting; log-probabilities kept when the server
gives them. No Django import here.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import aiohttp
import orjson

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class TeacherError(Exception):
    """A teacher that cannot work: bad configuration, unreachable, or a request that kept
    failing after every retry."""


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
    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.wait = wait


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
    ) -> None:
        if endpoint not in ("chat", "completions"):
            raise TeacherError(f"endpoint must be 'chat' or 'completions', not {endpoint!r}")
        if not base_url.startswith(("http://", "https://")):
            raise TeacherError(f"base URL {base_url!r} must start with http:// or https://")
        if concurrency < 1:
            raise TeacherError("concurrency must be at least 1")
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

    def _parse(self, payload: dict, n: int) -> Completion:
        choices = payload.get("choices")
        if not isinstance(choices, list) or not choices:
            raise _Retry("malformed response: no choices")
        texts, logprobs = [], []
        for choice in choices:
            if not isinstance(choice, dict):
                raise _Retry("malformed response: a choice is not an object")
            if self.endpoint == "chat":
                message = choice.get("message") or {}
                text = message.get("content") if isinstance(message, dict) else None
                tokens = ((choice.get("logprobs") or {}).get("content")) or None
                logprob = sum(t.get("logprob", 0.0) for t in tokens) if tokens else None
            else:
                text = choice.get("text")
                values = (choice.get("logprobs") or {}).get("token_logprobs") or None
                logprob = sum(v for v in values if v is not None) if values else None
            if not isinstance(text, str):
                raise _Retry("malformed response: a choice has no text")
            texts.append(text)
            logprobs.append(logprob)
        usage = payload.get("usage") or {}
        return Completion(
            texts=texts,
            logprobs=logprobs,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )

    def _url(self) -> str:
        path = "/chat/completions" if self.endpoint == "chat" else "/completions"
        return self.base_url + path

    async def _attempt(self, session: aiohttp.ClientSession, request: CompletionRequest):
        try:
            async with session.post(
                self._url(), data=orjson.dumps(self._body(request)), headers=self._headers()
            ) as response:
                body = await response.read()
                if response.status in RETRYABLE_STATUS:
                    wait = _retry_after(response.headers.get("Retry-After"))
                    raise _Retry(f"HTTP {response.status}", wait)
                if response.status >= 400:
                    raise TeacherError(
                        f"{self._url()} answered HTTP {response.status}: "
                        f"{body[:300].decode('utf-8', 'replace')}"
                    )
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise _Retry(f"connection error: {exc.__class__.__name__}: {exc}") from exc
        except TimeoutError as exc:
            raise _Retry(f"timed out after {self.timeout:g} s") from exc
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _Retry("malformed response: not JSON") from exc
        if not isinstance(payload, dict):
            raise _Retry("malformed response: not a JSON object")
        return self._parse(payload, request.n)

    async def complete(
        self, session: aiohttp.ClientSession, request: CompletionRequest
    ) -> Completion:
        errors: list[str] = []
        for attempt in range(1, self.max_retries + 2):
            try:
                completion = await self._attempt(session, request)
            except _Retry as retry:
                errors.append(str(retry))
                if attempt > self.max_retries:
                    raise TeacherError(
                        f"gave up after {attempt} attempts: {'; '.join(errors[-3:])}"
                    ) from None
                delay = min(self.backoff_max, self.backoff * 2 ** (attempt - 1))
                delay = retry.wait if retry.wait is not None else delay * (0.5 + random.random())
                await asyncio.sleep(min(delay, self.backoff_max))
                continue
            completion.attempts = attempt
            completion.errors = errors
            return completion
        raise AssertionError("unreachable")

    # --- many requests ------------------------------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=self.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        return aiohttp.ClientSession(connector=connector, timeout=timeout)

    async def run(
        self,
        requests: Iterable[CompletionRequest],
        on_result: Callable[[CompletionRequest, Completion | TeacherError], Awaitable[None] | None],
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        """Send every request, ``concurrency`` at a time, calling ``on_result`` (in this
        event loop, one at a time) as each finishes. ``should_stop`` is polled between
        requests: when it says so, no new request starts and the ones in flight finish."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=self.concurrency * 2)
        lock = asyncio.Lock()

        async def feed() -> None:
            for request in requests:
                if should_stop is not None and should_stop():
                    break
                await queue.put(request)
            for _ in range(self.concurrency):
                await queue.put(None)

        async def work(session: aiohttp.ClientSession) -> None:
            while (request := await queue.get()) is not None:
                try:
                    result: Completion | TeacherError = await self.complete(session, request)
                except TeacherError as exc:
                    result = exc
                async with lock:
                    outcome = on_result(request, result)
                    if asyncio.iscoroutine(outcome):
                        await outcome

        async with self._session() as session:
            await asyncio.gather(feed(), *(work(session) for _ in range(self.concurrency)))

    def run_sync(self, requests, on_result, *, should_stop=None) -> None:
        asyncio.run(self.run(requests, on_result, should_stop=should_stop))

    async def check(self) -> None:
        """Fail fast, before any work, when the server cannot be reached or refuses us."""
        try:
            async with (
                self._session() as session,
                session.get(
                    self.base_url + "/models",
                    headers=self._headers(),
                    timeout=aiohttp.ClientTimeout(total=min(self.timeout, 10)),
                ) as response,
            ):
                if response.status in (401, 403):
                    raise TeacherError(
                        f"{self.base_url} refused the API key (HTTP {response.status})"
                    )
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise TeacherError(
                f"cannot reach the teacher at {self.base_url}: {exc.__class__.__name__}: {exc}"
            ) from exc

    def check_sync(self) -> None:
        asyncio.run(self.check())


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
