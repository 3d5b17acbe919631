"""A small real OpenAI-compatible HTTP server on loopback, for tests and the benchmark.

It answers /v1/chat/completions, /v1/completions and /v1/models from a thread of its own.
Replies are a pure function of the prompt (so a test knows which triples must appear), and
it can be told to misbehave: answer 429 or 500, hang, or send malformed bodies, for the
first requests or for a share of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web


def reply_for(prompt: str, index: int) -> str:
    """The i-th completion of a prompt: a tail named after the prompt."""
    digest = hashlib.sha1(prompt.encode()).hexdigest()[:6]
    return f" thing {digest} number {index}\nignored second line"


@dataclass
class Faults:
    first_n: int = 0  # the first n requests get `kind`
    kind: str = "429"  # 429 | 500 | malformed | hang
    share: float = 0.0  # after those, this share of requests gets `kind`
    hang_seconds: float = 5.0
    seed: int = 0


@dataclass
class ServerState:
    faults: Faults = field(default_factory=Faults)
    delay: float = 0.0
    requests: Counter = field(default_factory=Counter)
    require_key: str | None = None


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
            if self._count <= faults.first_n:
                return faults.kind
            if faults.share and self._rng.random() < faults.share:
                return faults.kind
        return None

    async def _misbehave(self, request: web.Request) -> web.Response | None:
        if self.state.require_key and (
            request.headers.get("Authorization") != f"Bearer {self.state.require_key}"
        ):
            return web.json_response({"error": "bad key"}, status=401)
        if self.state.delay:
            await asyncio.sleep(self.state.delay)
        fault = self._fault()
        if fault is None:
            return None
        self.state.requests[f"fault {fault}"] += 1
        if fault == "429":
            return web.json_response(
                {"error": "slow down"}, status=429, headers={"Retry-After": "0"}
            )
        if fault == "500":
            return web.Response(text="internal error", status=500)
        if fault == "malformed":
            return web.Response(text='{"choices": [{"mess', content_type="application/json")
        await asyncio.sleep(self.state.faults.hang_seconds)
        return web.Response(text="too late", status=500)

    async def _chat(self, request: web.Request) -> web.Response:
        if (bad := await self._misbehave(request)) is not None:
            return bad
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        n = int(body.get("n", 1))
        self.state.requests["chat"] += 1
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": reply_for(prompt, i)},
                "logprobs": {"content": [{"token": "x", "logprob": -0.5}, {"logprob": -0.25}]},
                "finish_reason": "stop",
            }
            for i in range(n)
        ]
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": 4 * n}
        return web.json_response({"object": "chat.completion", "choices": choices, "usage": usage})

    async def _completions(self, request: web.Request) -> web.Response:
        if (bad := await self._misbehave(request)) is not None:
            return bad
        body = await request.json()
        prompt = body["prompt"]
        n = int(body.get("n", 1))
        self.state.requests["completions"] += 1
        choices = [
            {"index": i, "text": reply_for(prompt, i), "logprobs": {"token_logprobs": [-1.0, -0.5]}}
            for i in range(n)
        ]
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": 4 * n}
        return web.json_response({"object": "text_completion", "choices": choices, "usage": usage})

    async def _models(self, request: web.Request) -> web.Response:
        if self.state.require_key and (
            request.headers.get("Authorization") != f"Bearer {self.state.require_key}"
        ):
            return web.json_response({"error": "bad key"}, status=401)
        return web.json_response({"data": [{"id": "loopback-teacher"}]})
