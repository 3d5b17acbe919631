"""A small real OpenAI-compatible HTTP server on loopback, for tests and the benchmark.

It answers /v1/chat/completions, /v1/completions and /v1/models from a thread of its own.
Replies are a pure function of the prompt (so a test knows which triples must appear), and
it can be told to misbehave: answer 429, 500, 401 or 404, hang, send malformed bodies, an
answer with an odd field (a token count "n/a", a null log-probability) or a huge body, for
the first requests or for a share of them. It counts what it received, per prompt too; a
good answer of one token (the teacher check's request) is counted as "check".
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web


def reply_for(prompt: str, index: int) -> str:
    """The i-th completion of a prompt: a tail named after the prompt."""
    digest = hashlib.sha1(prompt.encode()).hexdigest()[:6]
    return f" thing {digest} number {index}\nignored second line"


def _counted_as(body: dict, kind: str) -> str:
    """A completion of one token is the teacher check's request: counted apart."""
    return "check" if body.get("max_tokens") == 1 else kind


@dataclass
class Faults:
    first_n: int = 0  # the first n requests get `kind`
    # 429 | 500 | 401 | 404 | malformed | hang | odd-usage | null-logprob | huge
    kind: str = "429"
    share: float = 0.0  # after those, this share of requests gets `kind`
    skip_first: int = 0  # these first requests are answered well whatever the above say
    hang_seconds: float = 5.0
    huge_bytes: int = 50 * 2**20  # the size of a `huge` answer
    huge_length_header: bool = False  # whether a huge answer says its size up front
    seed: int = 0


@dataclass
class ServerState:
    faults: Faults = field(default_factory=Faults)
    delay: float = 0.0
    requests: Counter = field(default_factory=Counter)
    prompts: Counter = field(default_factory=Counter)  # completion requests per prompt
    require_key: str | None = None
    models: set[str] | None = None  # the model names it serves (None: any)
    huge_sent: list[int] = field(default_factory=list)  # bytes of each huge answer sent
    reply: Callable[[str, int], str] = reply_for  # the i-th completion of a prompt
    # While set and not yet opened, completion requests (not the check's) wait for it.
    gate: threading.Event | None = None


class OpenAIServer:
    def __init__(self, state: ServerState | None = None) -> None:
        self.state = state or ServerState()
        self._rng = random.Random(self.state.faults.seed)
        self._count = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> OpenAIServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def _fault(self) -> str | None:
        faults = self.state.faults
        with self._lock:
            self._count += 1
            if self._count <= faults.skip_first:
                return None
            if self._count - faults.skip_first <= faults.first_n:
                return faults.kind
            if faults.share and self._rng.random() < faults.share:
                return faults.kind
        return None

    async def _misbehave(
        self, request: web.Request, body: dict
    ) -> tuple[web.StreamResponse | None, str | None]:
        """A bad answer to send instead of the good one (or None), and the fault drawn."""
        if self.state.require_key and (
            request.headers.get("Authorization") != f"Bearer {self.state.require_key}"
        ):
            return web.json_response({"error": "bad key"}, status=401), None
        if self.state.models is not None and body.get("model") not in self.state.models:
            message = f"The model '{body.get('model')}' does not exist"
            return web.json_response({"error": {"message": message}}, status=404), None
        if self.state.gate is not None and body.get("max_tokens") != 1:
            while not self.state.gate.is_set():
                await asyncio.sleep(0.01)
        if self.state.delay:
            await asyncio.sleep(self.state.delay)
        fault = self._fault()
        if fault is None:
            return None, None
        self.state.requests[f"fault {fault}"] += 1
        if fault in ("odd-usage", "null-logprob"):  # a good answer with an odd field
            return None, fault
        if fault == "429":
            return web.json_response(
                {"error": "slow down"}, status=429, headers={"Retry-After": "0"}
            ), fault
        if fault in ("500", "401", "404"):
            return web.Response(text=f"error {fault}", status=int(fault)), fault
        if fault == "malformed":
            return web.Response(text='{"choices": [{"mess', content_type="application/json"), fault
        if fault == "huge":
            return await self._huge(request), fault
        await asyncio.sleep(self.state.faults.hang_seconds)
        return web.Response(text="too late", status=500), fault

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        """A well-formed answer whose one text is `huge_bytes` long, sent in pieces; how
        much of it went out before the client hung up is kept in `huge_sent`."""
        size = self.state.faults.huge_bytes
        head, tail = b'{"choices": [{"index": 0, "message": {"content": "', b'"}}]}'
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if self.state.faults.huge_length_header:
            response.content_length = len(head) + size + len(tail)
        sent = 0
        try:
            await response.prepare(request)
            await response.write(head)
            piece = b"x" * 2**16
            while sent < size:
                chunk = piece[: size - sent]
                await response.write(chunk)
                sent += len(chunk)
            await response.write(tail)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client stopped reading
        finally:
            self.state.huge_sent.append(sent)
        return response

    def _answer(self, prompt: str, kind: str, choices: list[dict], fault: str | None):
        """The answer, with an odd field when the fault drawn for it says so."""
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": 4 * len(choices)}
        if fault == "odd-usage":
            usage["prompt_tokens"] = "n/a"
        if fault == "null-logprob":
            for choice in choices:
                if kind == "chat":
                    choice["logprobs"]["content"][1]["logprob"] = None
                else:
                    choice["logprobs"]["token_logprobs"] = [-1.0, None]
        return web.json_response({"object": kind, "choices": choices, "usage": usage})

    async def _received(self, request: web.Request, kind: str) -> tuple[dict, str]:
        body = await request.json()
        prompt = body["messages"][-1]["content"] if kind == "chat" else body["prompt"]
        self.state.prompts[prompt] += 1
        return body, prompt

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body, prompt = await self._received(request, "chat")
        bad, fault = await self._misbehave(request, body)
        if bad is not None:
            return bad
        n = int(body.get("n", 1))
        self.state.requests[_counted_as(body, "chat")] += 1
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": self.state.reply(prompt, i)},
                "logprobs": {"content": [{"token": "x", "logprob": -0.5}, {"logprob": -0.25}]},
                "finish_reason": "stop",
            }
            for i in range(n)
        ]
        return self._answer(prompt, "chat", choices, fault)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body, prompt = await self._received(request, "completions")
        bad, fault = await self._misbehave(request, body)
        if bad is not None:
            return bad
        n = int(body.get("n", 1))
        self.state.requests[_counted_as(body, "completions")] += 1
        choices = [
            {
                "index": i,
                "text": self.state.reply(prompt, i),
                "logprobs": {"token_logprobs": [-1.0, -0.5]},
            }
            for i in range(n)
        ]
        return self._answer(prompt, "completions", choices, fault)

    async def _models(self, request: web.Request) -> web.Response:
        if self.state.require_key and (
            request.headers.get("Authorization") != f"Bearer {self.state.require_key}"
        ):
            return web.json_response({"error": "bad key"}, status=401)
        return web.json_response({"data": [{"id": "loopback-teacher"}]})
