"""Annotation under load: simulated annotators over HTTP against gunicorn and PostgreSQL.

    python bench/annotate_load.py                              # 1M items, 50 annotators, 60 s
    python bench/annotate_load.py --items 100000 --seconds 20
    python bench/annotate_load.py --workers 2 --threads 8 --think-ms 100 --keep
    python bench/annotate_load.py --combined      # submit returns the next item: 1 request/judgment
    python bench/annotate_load.py --join-workers 50 --join-seconds 5   # a smaller join phase

Creates its own PostgreSQL database (drop, create, migrate), loads a synthetic
corpus with COPY, creates a campaign over all of it with k=3 through
`services.campaign_create` (timed), starts the app under gunicorn (gthread
workers, DEBUG off, production settings without the HTTPS redirect) on a free
loopback port, and runs N annotators, each a thread with its own keep-alive
HTTP connection and token: POST /api/campaigns/<id>/next/, then POST
/api/assignments/<id>/judgment/, for a bounded time. Gold items are answered
right (the client knows their text), the rest at random, so nobody is paused.

Then a join phase (--join-workers, default 200; 0 leaves it out): new crowd workers
arrive through one Prolific join link spread over --join-seconds (default 20), each in
its own browser-like session: GET the join page, POST the consent (CSRF token and
cookies as a browser sends them), GET the judging page. It prints the p50/p95 of that
first page (the three requests together) against the 200 ms target, errors, and the
annotators made against the workers who came (no duplicates).

Between the two, a bare phase (--bare-seconds, default 5; 0 leaves it out): the same
client threads hit /api/bench/bare/ (core.bench, routed only with SKD_BENCH_ENDPOINTS=1,
which the bench sets): the same middleware and DRF token auth around one indexed query
and a JSON answer, the floor the judging path is compared with.

Prints judgments/s and p50/p95/p99 latency of next-item and submit, the CPU
seconds spent by gunicorn, PostgreSQL (this database's backends and the server's own
processes, not other databases') and the client; the CPU per judgment (gunicorn +
PostgreSQL; the client, the load generator, apart), the bare endpoint's CPU per request
and the ratio of the two; the invariants checked
with SQL (no item over k judgments, no annotator twice on an item) and the
EXPLAIN ANALYZE of the claim query. Targets are printed beside the figures;
nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RELATIONS = ["xAttr", "xEffect", "xIntent", "xNeed", "xReact", "xWant", "HinderedBy"]
VERBS = ["eats", "reads", "buys", "fixes", "paints", "sells", "finds", "bakes", "drives"]
NOUNS = ["a cake", "the car", "a book", "the house", "a bike", "the garden", "a letter"]
TAIL_WORDS = ["to be happy", "tired", "a tool", "to rest", "gets paid", "proud", "to leave"]
TARGETS = {"p95_ms": 50.0, "judgments_per_s": 200.0, "errors": 0, "join_p95_ms": 200.0}


# --- Setup ------------------------------------------------------------------------


def recreate_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def build_corpus(n: int, seed: int = 13):
    """n triples (heads x 7 relations, unique tails) straight into the table with COPY."""
    from django.db import connection, transaction

    from corpora.importing import tail_key
    from corpora.models import Corpus, Event, Relation, Triple

    rng = random.Random(seed)
    corpus = Corpus.objects.create(name="bench", description="synthetic, bench/annotate_load.py")
    relation_ids = [Relation.objects.get(name=name).pk for name in RELATIONS]
    n_heads = max(1, n // 40)
    texts = [f"PersonX {rng.choice(VERBS)} {rng.choice(NOUNS)} number {i}" for i in range(n_heads)]
    Event.objects.bulk_create([Event(text=t) for t in texts], batch_size=5000)
    head_ids = dict(Event.objects.filter(text__startswith="PersonX ").values_list("text", "id"))
    heads = [head_ids[t] for t in texts]
    with transaction.atomic(), connection.cursor() as cursor:
        columns = (
            "corpus_id, head_id, relation_id, tail, tail_key, split, origin, occurrences, "
            "source_fields"
        )
        with cursor.cursor.copy(f"COPY {Triple._meta.db_table} ({columns}) FROM STDIN") as copy:
            for i in range(n):
                tail = f"{rng.choice(TAIL_WORDS)} {rng.choice(TAIL_WORDS)} {i}"
                copy.write_row(
                    (
                        corpus.pk,
                        heads[(i // len(relation_ids)) % n_heads],
                        relation_ids[i % len(relation_ids)],
                        tail,
                        tail_key(tail),
                        "train",
                        "import",
                        1,
                        "",
                    )
                )
        cursor.execute(f"ANALYZE {Triple._meta.db_table}")
    Corpus.objects.filter(pk=corpus.pk).update(triple_count=n, occurrence_count=n)
    return corpus


def make_annotators(n: int, campaign) -> list[tuple[str, str]]:
    """(username, token) of n annotators, members of `campaign` (no password hashing:
    they use tokens)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    from annotation.services.membership import member_add
    from core.roles import ANNOTATOR

    group, _ = Group.objects.get_or_create(name=ANNOTATOR)
    made = []
    for i in range(1, n + 1):
        user = get_user_model()(username=f"load-annotator-{i}")
        user.set_unusable_password()
        user.save()
        user.groups.add(group)
        member_add(campaign=campaign, annotator=user)
        made.append((user.username, Token.objects.create(user=user).key))
    return made


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(env: dict, port: int, workers: int, threads: int, kind: str, log: Path):
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [
        str(gunicorn),
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        kind,
        *(["--threads", str(threads)] if kind == "gthread" else []),
        "--keep-alive",
        "75",
        "--backlog",
        "2048",
        "--log-level",
        "warning",
        "--error-logfile",
        str(log),
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


def wait_ready(port: int, token: str, process, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/campaigns/open/", headers={"Authorization": f"Token {token}"})
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("gunicorn did not answer in time")


def warm_up(port: int, tokens: list[str], requests: int = 40) -> None:
    """Concurrent unmeasured requests, so that every worker thread has opened its
    database connection and loaded its code before the clock starts."""

    def get(token: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/api/campaigns/open/", headers={"Authorization": f"Token {token}"})
        conn.getresponse().read()
        conn.close()

    threads = [
        threading.Thread(target=get, args=(tokens[n % len(tokens)],)) for n in range(requests)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def stop(process) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- CPU accounting -----------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _cpu_of(pid: int, reaped_children: bool = False) -> float:
    fields = _stat(pid)
    if not fields:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime of exited children
    return ticks / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _postgres_pids(url: str) -> list[int]:
    """The PostgreSQL processes that work for this bench: the backends of its database and
    the server's own background processes (WAL writer, checkpointer, ...), not the backends
    of other databases on the same server."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND (datname = current_database() OR datname IS NULL)"
        ).fetchall()
    return [pid for (pid,) in rows]


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / os.sysconf("SC_CLK_TCK"), sum(values) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(gunicorn_pid: int, pg_url: str) -> dict:
    """CPU seconds so far: gunicorn (master and workers), this bench's PostgreSQL
    processes (per pid), this client, and the whole machine."""
    workers = _children(gunicorn_pid)
    busy, total = _machine_busy()
    return {
        "machine_busy": busy,
        "machine_total": total,
        "gunicorn": sum(_cpu_of(p) for p in [gunicorn_pid, *workers]),
        "postgres": {pid: _cpu_of(pid) for pid in _postgres_pids(pg_url)},
        "client": _cpu_of(os.getpid()),
    }


def cpu_spent(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds between two snapshots. PostgreSQL: the processes alive at the end (a
    backend that started in between counts from its start; Django keeps its connections,
    CONN_MAX_AGE, so none ends during a run)."""
    spent = {key: after[key] - before[key] for key in after if key != "postgres"}
    spent["postgres"] = sum(
        cpu - before["postgres"].get(pid, 0.0) for pid, cpu in after["postgres"].items()
    )
    return spent


# --- Load -------------------------------------------------------------------------------


@dataclass
class Annotator:
    username: str
    token: str
    next_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    judgments: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    finished: bool = False

    def error(self, kind: str, sample: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if len(self.samples) < 3:
            self.samples.append(f"{kind}: {sample[:300]}")


def annotate(
    who: Annotator, port, campaign_id, gold, deadline, think, seed, combined=False
) -> None:
    rng = random.Random(seed)
    headers = {
        "Authorization": f"Token {who.token}",
        "Accept": "application/json",
        "Content-Type": "application/json",
    }
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(path: str, body: bytes | None, times: list[float]) -> tuple[int, bytes] | None:
        nonlocal conn
        started = time.perf_counter()
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            who.error("connection", repr(exc))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            return None
        times.append((time.perf_counter() - started) * 1000)
        return response.status, data

    next_path = f"/api/campaigns/{campaign_id}/next/"
    if think:  # independent people: start at random, think for varying times
        time.sleep(rng.uniform(0, 2 * think))
    item = None  # with combined, the item the last submit handed back
    while time.perf_counter() < deadline:
        if item is None:
            got = post(next_path, None, who.next_ms)
            if got is None:
                continue
            code, data = got
            if code == 204:
                who.finished = True
                break
            if code != 200:
                who.error(f"next {code}", data.decode(errors="replace"))
                continue
            item = json.loads(data)
        truth = gold.get((item["head"], item["relation"], item["tail"]))
        value = rng.choice((2, 1, -1, -2)) if truth is None else (2 if truth else -2)
        if think:
            time.sleep(rng.uniform(0.5 * think, 1.5 * think))
        body = json.dumps({"value": value}).encode()
        path = f"/api/assignments/{item['assignment_id']}/judgment/"
        got = post(path + ("?next=1" if combined else ""), body, who.submit_ms)
        item = None
        if got is None:
            continue
        code, data = got
        if code == 201:
            who.judgments += 1
            if combined:
                item = json.loads(data)["next"]
                if item is None:
                    who.finished = True
                    break
        else:
            who.error(f"submit {code}", data.decode(errors="replace"))
    conn.close()


BARE_PATH = "/api/bench/bare/"


def bare_phase(port: int, tokens: list[str], seconds: float) -> dict:
    """The floor: the same client threads (one keep-alive connection and token each) hit
    the bare endpoint (core.bench: same middleware, DRF token auth, one indexed query,
    JSON) as fast as it answers, for `seconds`."""
    counts = [0] * len(tokens)
    times: list[list[float]] = [[] for _ in tokens]
    failures = [0] * len(tokens)
    deadline = time.perf_counter() + seconds

    def hit(n: int) -> None:
        headers = {"Authorization": f"Token {tokens[n]}", "Accept": "application/json"}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                conn.request("GET", BARE_PATH, headers=headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                failures[n] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            if response.status != 200:
                failures[n] += 1
                continue
            counts[n] += 1
            times[n].append((time.perf_counter() - started) * 1000)
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=hit, args=(n,)) for n in range(len(tokens))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "requests": sum(counts),
        "errors": sum(failures),
        "elapsed": time.perf_counter() - started,
        "ms": [x for per in times for x in per],
    }


def percentiles(values: list[float]) -> tuple[float, float, float]:
    import numpy as np

    if not values:
        return (float("nan"),) * 3
    p50, p95, p99 = np.percentile(np.array(values), [50, 95, 99])
    return float(p50), float(p95), float(p99)


# --- Join phase: crowd workers arriving through a link -------------------------------


@dataclass
class Arrival:
    pid: str
    first_page_ms: float | None = None
    error: str = ""


def _cookies(response, jar: dict[str, str]) -> None:
    for header in response.headers.get_all("Set-Cookie") or []:
        name, _, rest = header.partition("=")
        jar[name.strip()] = rest.split(";", 1)[0]


def _cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in jar.items())


def arrive(who: Arrival, port: int, token: str, campaign_id: int, at: float) -> None:
    """One new worker: the join page, the consent, the first judging page (timed as one)."""
    import re
    from urllib.parse import urlencode

    time.sleep(max(0.0, at - time.perf_counter()))
    query = urlencode({"PROLIFIC_PID": who.pid, "STUDY_ID": "bench", "SESSION_ID": who.pid})
    path = f"/join/{token}/?{query}"
    jar: dict[str, str] = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.perf_counter()
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        html = response.read().decode(errors="replace")
        _cookies(response, jar)
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        if response.status != 200 or not found:
            who.error = f"join page {response.status}"
            return
        body = urlencode({"csrfmiddlewaretoken": found.group(1)})
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": _cookie_header(jar),
            "Referer": f"http://127.0.0.1:{port}{path}",
        }
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        _cookies(response, jar)
        if response.status != 302:
            who.error = f"consent {response.status}"
            return
        conn.request("GET", response.getheader("Location"), headers={"Cookie": _cookie_header(jar)})
        response = conn.getresponse()
        page = response.read().decode(errors="replace")
        if response.status != 200 or "judge-card" not in page:
            who.error = f"judge page {response.status}"
            return
        who.first_page_ms = (time.perf_counter() - started) * 1000
    except (OSError, http.client.HTTPException) as exc:
        who.error = f"connection {exc!r}"
    finally:
        conn.close()


def join_phase(port: int, campaign, workers: int, seconds: float, seed: int = 5) -> dict:
    """`workers` new crowd workers arrive through one join link over `seconds`."""
    from django.db import connections

    from annotation.services.joining import join_link_create

    link = join_link_create(campaign=campaign, platform="prolific", label="bench")
    connections.close_all()
    rng = random.Random(seed)
    arrivals = [Arrival(pid=f"bench{n:05d}{rng.randrange(16**6):06x}") for n in range(workers)]
    start = time.perf_counter() + 0.2
    times = sorted(start + rng.uniform(0, seconds) for _ in arrivals)
    threads = [
        threading.Thread(target=arrive, args=(who, port, link.token, campaign.pk, at))
        for who, at in zip(arrivals, times, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"link": link, "arrivals": arrivals, "elapsed": time.perf_counter() - start}


def report_join(result: dict, workers: int, seconds: float) -> None:
    from django.db.models import Count

    from annotation.models import CampaignAnnotator, CrowdWorker, JoinLink

    arrivals = result["arrivals"]
    ok = [a.first_page_ms for a in arrivals if a.first_page_ms is not None]
    errors: dict[str, int] = {}
    for a in arrivals:
        if a.error:
            errors[a.error] = errors.get(a.error, 0) + 1
    p50, p95, p99 = percentiles(ok)
    link = JoinLink.objects.get(pk=result["link"].pk)
    made = CrowdWorker.objects.filter(worker_id__startswith="bench").count()
    members = CampaignAnnotator.objects.filter(joined_via=link).count()
    duplicates = (
        CrowdWorker.objects.values("platform", "worker_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .count()
    )
    print(
        f"\njoin: {workers} new workers through one Prolific link over {seconds:.0f} s "
        f"(took {result['elapsed']:.1f} s)"
    )
    print(
        f"  first page ms      p50 {p50:6.1f}  p95 {p95:6.1f}  p99 {p99:6.1f}   "
        f"(join page + consent + judging page; target p95 <= {TARGETS['join_p95_ms']:.0f})"
    )
    print(f"  errors             {sum(errors.values()):>8}   (target 0) {errors or ''}")
    cpu = result.get("cpu")
    if cpu:
        print(
            f"  CPU per arrival    gunicorn {1000 * cpu['gunicorn'] / workers:.1f} ms, postgres "
            f"{1000 * cpu['postgres'] / workers:.1f} ms (3 requests); machine "
            f"{100 * cpu['machine_busy'] / cpu['machine_total']:.0f}% busy during the phase"
        )
    print(
        f"  annotators made    {made:>8}   members through the link {members}, link uses "
        f"{link.uses}, duplicate platform ids {duplicates} (target {workers}, {workers}, "
        f"{workers}, 0)"
    )


# --- Checks ---------------------------------------------------------------------------


def check_invariants(campaign) -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM annotation_judgment j "
            "JOIN annotation_item i ON i.id = j.item_id WHERE j.campaign_id = %s "
            "AND NOT i.is_gold GROUP BY j.item_id) per_item",
            [campaign.pk],
        )
        most = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM annotation_judgment WHERE campaign_id = %s "
            "GROUP BY item_id, annotator_id HAVING count(*) > 1) twice",
            [campaign.pk],
        )
        twice = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM annotation_item i LEFT JOIN (SELECT item_id, count(*) AS n "
            "FROM annotation_judgment WHERE campaign_id = %s GROUP BY item_id) j "
            "ON j.item_id = i.id WHERE i.campaign_id = %s "
            "AND i.judgment_count <> coalesce(j.n, 0)",
            [campaign.pk, campaign.pk],
        )
        miscounted = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM annotation_judgment WHERE campaign_id = %s", [campaign.pk]
        )
        judgments = cursor.fetchone()[0]
    return {"most": most, "twice": twice, "miscounted": miscounted, "judgments": judgments}


def explain_claim(campaign, username: str) -> str:
    """EXPLAIN ANALYZE of the query leasing._claim_item runs, rebuilt here (rolled back)."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.db.models import Exists, OuterRef

    from annotation.models import Assignment, Item

    user = get_user_model().objects.get(username=username)
    query = (
        Item.objects.select_for_update(skip_locked=True)
        .filter(campaign=campaign, slots_free__gt=0)
        .filter(~Exists(Assignment.objects.filter(item=OuterRef("pk"), annotator=user)))
        .order_by("position")
        .values_list("pk", flat=True)[:1]
    )
    with transaction.atomic():
        plan = query.explain(analyze=True, buffers=True)
        transaction.set_rollback(True)
    return plan


# --- Main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1_000_000, help="campaign items (= triples)")
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--workers", type=int, default=max(2, os.cpu_count() or 2), help="gunicorn workers"
    )
    parser.add_argument(
        "--worker-class",
        choices=("gthread", "sync"),
        default="gthread",
        help="gthread keeps connections alive; sync closes each (default gthread)",
    )
    parser.add_argument("--threads", type=int, default=2, help="threads per gthread worker")
    parser.add_argument("--k", type=int, default=3, help="judgments per item")
    parser.add_argument("--gold-share", type=float, default=0.1)
    parser.add_argument(
        "--think-ms",
        type=float,
        default=0.0,
        help="mean pause between next and submit, uniform in [0.5, 1.5] x this (default 0)",
    )
    parser.add_argument(
        "--combined",
        action="store_true",
        help="one request per judgment: each submit asks for the next item (?next=1); "
        "next-item latency then covers only each annotator's first item",
    )
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="skip ANALYZE after creating the campaign (the server here runs no autovacuum)",
    )
    parser.add_argument(
        "--join-workers",
        type=int,
        default=200,
        help="new crowd workers arriving through a join link after the load (0: none)",
    )
    parser.add_argument(
        "--join-seconds", type=float, default=20.0, help="over how long they arrive"
    )
    parser.add_argument(
        "--bare-seconds",
        type=float,
        default=5.0,
        help="after the load, the same clients hit the bare endpoint this long (0: skip)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/skd_bench_annotate"
        ),
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="skd-bench-annotate-"))
    env = {
        **os.environ,
        "DATABASE_URL": args.pg,
        "SKD_VAR_DIR": str(work / "var"),
        "HF_HUB_OFFLINE": "1",
        "DJANGO_ENV": "production",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": os.urandom(24).hex(),
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        # The join phase's workers all come from 127.0.0.1.
        "SKD_JOIN_RATE_PER_MINUTE": "0",
        # The bare endpoint (core.bench), the floor the judging path is compared with.
        "SKD_BENCH_ENDPOINTS": "1",
    }
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    recreate_database(args.pg)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0", "--skip-checks"],
        env=env,
        cwd=ROOT,
        check=True,
    )
    if args.join_workers > 0:  # the join and judging pages are pages: they need the manifest
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
            env=env,
            cwd=ROOT,
            check=True,
        )
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection, connections

    from annotation.models import Item
    from annotation.services.campaigns import campaign_create

    started = time.perf_counter()
    corpus = build_corpus(args.items)
    print(
        f"corpus: {args.items:,} triples loaded with COPY in {time.perf_counter() - started:.1f} s"
    )

    started = time.perf_counter()
    campaign = campaign_create(
        corpus=corpus,
        name="load",
        size=args.items,
        judgments_per_item=args.k,
        gold_share=args.gold_share,
        lease_seconds=600,
        seed=1,
        # The simulated annotators answer at random in milliseconds: the honesty checks
        # would rightly pause them, and this bench measures the judging path, not them.
        speed_floor=0.0,
        straight_line_run=1000,
    )
    created = time.perf_counter() - started
    print(
        f"campaign_create: {campaign.item_count:,} items + {campaign.gold_count:,} gold, "
        f"k={args.k}, in {created:.1f} s ({campaign.item_count / created:,.0f} items/s)"
    )
    if not args.no_analyze:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE annotation_item")
        print(f"ANALYZE annotation_item: {time.perf_counter() - started:.1f} s")
    gold = {
        (head, relation, tail): acceptable
        for head, relation, tail, acceptable in Item.objects.filter(
            campaign=campaign, is_gold=True
        ).values_list("head__text", "relation__name", "tail", "gold_acceptable")
    }
    accounts = make_annotators(args.annotators, campaign)
    connections.close_all()

    port = free_port()
    log = work / "gunicorn.log"
    server = start_gunicorn(env, port, args.workers, args.threads, args.worker_class, log)
    try:
        wait_ready(port, accounts[0][1], server)
        warm_up(port, [token for _, token in accounts])
        shape = f" x {args.threads} threads" if args.worker_class == "gthread" else ""
        print(
            f"gunicorn: {args.workers} {args.worker_class} workers{shape} on "
            f"127.0.0.1:{port} (production settings, DEBUG off, no HTTPS redirect; "
            "warmed up with 40 unmeasured requests)"
        )
        annotators = [Annotator(username, token) for username, token in accounts]
        cpu_before = cpu_snapshot(server.pid, args.pg)
        started = time.perf_counter()
        deadline = started + args.seconds
        threads = [
            threading.Thread(
                target=annotate,
                args=(who, port, campaign.pk, gold, deadline, args.think_ms / 1000, n),
                kwargs={"combined": args.combined},
            )
            for n, who in enumerate(annotators)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        cpu_after = cpu_snapshot(server.pid, args.pg)
        bare = None
        if args.bare_seconds > 0:
            bare_before = cpu_snapshot(server.pid, args.pg)
            bare = bare_phase(port, [token for _, token in accounts], args.bare_seconds)
            bare["cpu"] = cpu_spent(bare_before, cpu_snapshot(server.pid, args.pg))
        joined = None
        if args.join_workers > 0:
            join_cpu = cpu_snapshot(server.pid, args.pg)
            joined = join_phase(port, campaign, args.join_workers, args.join_seconds)
            joined["cpu"] = cpu_spent(join_cpu, cpu_snapshot(server.pid, args.pg))
    finally:
        stop(server)

    judgments = sum(a.judgments for a in annotators)
    next_ms = [x for a in annotators for x in a.next_ms]
    submit_ms = [x for a in annotators for x in a.submit_ms]
    errors: dict[str, int] = {}
    for a in annotators:
        for kind, n in a.errors.items():
            errors[kind] = errors.get(kind, 0) + n
    n_errors = sum(errors.values())
    rate = judgments / elapsed
    n50, n95, n99 = percentiles(next_ms)
    s50, s95, s99 = percentiles(submit_ms)

    print(
        f"\nload: {args.annotators} annotators over HTTP for {elapsed:.1f} s, "
        f"think time {args.think_ms:.0f} ms"
    )
    print(
        f"  judgments/s        {rate:>8.1f}   (target >= {TARGETS['judgments_per_s']:.0f}; "
        f"{judgments:,} judgments)"
    )
    print(
        f"  next-item ms       p50 {n50:6.1f}  p95 {n95:6.1f}  p99 {n99:6.1f}   "
        f"(target p95 <= {TARGETS['p95_ms']:.0f}; {len(next_ms):,} requests)"
    )
    print(
        f"  submit ms          p50 {s50:6.1f}  p95 {s95:6.1f}  p99 {s99:6.1f}   "
        f"(target p95 <= {TARGETS['p95_ms']:.0f}; {len(submit_ms):,} requests)"
    )
    print(f"  errors             {n_errors:>8}   (target {TARGETS['errors']}) {errors or ''}")
    for sample in [s for a in annotators for s in a.samples][:5]:
        print(f"    {sample}")
    finished = sum(a.finished for a in annotators)
    if finished:
        print(f"  {finished} annotator(s) ran out of items")
    requests = len(next_ms) + len(submit_ms)
    cpu = cpu_spent(cpu_before, cpu_after)
    served = cpu["gunicorn"] + cpu["postgres"]
    per_judgment = 1000 * served / max(judgments, 1)
    print(
        f"  CPU seconds        gunicorn {cpu['gunicorn']:.1f}, postgres {cpu['postgres']:.1f} "
        f"(this database's backends and the server's own processes), client "
        f"{cpu['client']:.1f}; machine {100 * cpu['machine_busy'] / cpu['machine_total']:.0f}% "
        f"busy ({cpu['machine_busy']:.1f} of {cpu['machine_total']:.0f}, other work included)"
    )
    print(
        f"  CPU per request    gunicorn {1000 * cpu['gunicorn'] / max(requests, 1):.2f} ms, "
        f"postgres {1000 * cpu['postgres'] / max(requests, 1):.2f} ms ({requests:,} requests)"
    )
    print(
        f"  CPU per judgment   {per_judgment:.2f} ms (gunicorn "
        f"{1000 * cpu['gunicorn'] / max(judgments, 1):.2f} + postgres "
        f"{1000 * cpu['postgres'] / max(judgments, 1):.2f}; target <= 3); the client, "
        f"the load generator, {1000 * cpu['client'] / max(judgments, 1):.2f} ms apart"
    )
    if bare is not None:
        b_cpu, b_n = bare["cpu"], max(bare["requests"], 1)
        b_served = 1000 * (b_cpu["gunicorn"] + b_cpu["postgres"]) / b_n
        b50, b95, _ = percentiles(bare["ms"])
        print(
            f"\nbare endpoint ({BARE_PATH}: same middleware, DRF token auth, one indexed "
            f"query, JSON), same {args.annotators} client threads, no pause, "
            f"{bare['elapsed']:.1f} s"
        )
        print(
            f"  requests/s         {bare['requests'] / bare['elapsed']:>8.1f}   "
            f"p50 {b50:.1f} ms, p95 {b95:.1f} ms; errors {bare['errors']}"
        )
        print(
            f"  CPU per request    {b_served:.2f} ms (gunicorn "
            f"{1000 * b_cpu['gunicorn'] / b_n:.2f} + postgres "
            f"{1000 * b_cpu['postgres'] / b_n:.2f}); client {1000 * b_cpu['client'] / b_n:.2f} ms"
        )
        print(
            f"  judgment / bare    {per_judgment / b_served if b_served else float('nan'):.2f}x "
            f"(CPU per judgment {per_judgment:.2f} ms against the floor {b_served:.2f} ms)"
        )

    if joined is not None:
        report_join(joined, args.join_workers, args.join_seconds)

    checks = check_invariants(campaign)
    print(
        f"\nchecks (SQL): {checks['judgments']:,} judgments stored; most judgments on an item: "
        f"{checks['most']} (k={args.k}); annotator twice on an item: {checks['twice']}; "
        f"items whose judgment_count is off: {checks['miscounted']}"
    )
    print(
        "  "
        + ("OK" if checks["most"] <= args.k and not checks["twice"] else "VIOLATED")
        + ("" if checks["miscounted"] == 0 else " (judgment_count drifted)")
    )
    print("\nEXPLAIN ANALYZE of the claim query (leasing._claim_item), for one annotator:")
    print("  " + explain_claim(campaign, accounts[0][0]).replace("\n", "\n  "))
    if log.exists() and log.stat().st_size:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        print("\ngunicorn log (last lines):\n  " + "\n  ".join(tail))
    connections.close_all()
    if args.keep:
        print(f"\nkept database {args.pg}")
    else:
        drop_database(args.pg)


if __name__ == "__main__":
    main()
