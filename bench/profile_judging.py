"""Profile the judging path in-process: combined submits (submit + next item, one request
per judgment) through the WSGI handler with API tokens, on PostgreSQL, under the settings
the load bench's gunicorn uses (production, DEBUG off).

    python bench/profile_judging.py                      # 2,000 submits, top 40 by own time
    python bench/profile_judging.py --requests 5000 --sort cumulative --top 60
    python bench/profile_judging.py --no-profile         # CPU per request only

Creates its own database (drop, create, migrate), a 20,000-item campaign (k=3, 10% gold)
and a few annotators; warms up, then runs the submits round-robin over the annotators and
prints this process's CPU per request, PostgreSQL's (this database's backends), the same
for the bare endpoint (core.bench), and cProfile's table.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import annotate_load as load  # noqa: E402


def wsgi_call(app, method: str, path: str, token: str, body: bytes = b"") -> tuple[int, bytes]:
    path, _, query = path.partition("?")
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Token {token}",
        "HTTP_ACCEPT": "application/json",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    status = []

    def start_response(line, headers, exc_info=None):
        status.append(int(line.split()[0]))

    result = app(environ, start_response)
    try:
        data = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return status[0], data


def _backend_ns(pid: int) -> int:
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


def pg_breakdown(submit, tokens: list[str], n: int) -> None:
    """Run n submits, charging the backend's CPU (ns, schedstat) to each statement's kind."""
    from collections import defaultdict

    from django.db import connection

    import core.db

    spent: dict[str, list[int]] = defaultdict(lambda: [0, 0])

    def kind(sql: str) -> str:
        return " ".join(sql.split())[:70]

    def charge(sql, call):
        connection.ensure_connection()  # closed between requests past CONN_MAX_AGE
        pid = connection.connection.info.backend_pid
        before = _backend_ns(pid)
        try:
            return call()
        finally:
            entry = spent[kind(sql)]
            entry[0] += _backend_ns(pid) - before
            entry[1] += 1

    def wrapper(execute, sql, params, many, context):
        return charge(sql, lambda: execute(sql, params, many, context))

    plain = core.db.fetchone
    core.db.fetchone = lambda sql, params: charge(sql, lambda: plain(sql, params))
    try:
        with connection.execute_wrapper(wrapper):
            for i in range(n):
                submit(tokens[i % len(tokens)])
    finally:
        core.db.fetchone = plain
    total = sum(ns for ns, _ in spent.values())
    print(f"PostgreSQL CPU by statement over {n} combined submits ({total / n / 1e6:.2f} ms each):")
    for sql, (ns, count) in sorted(spent.items(), key=lambda kv: -kv[1][0])[:15]:
        print(f"  {ns / n / 1e6:6.3f} ms/submit  {ns / count / 1e6:6.3f} ms x {count:>5}  {sql}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--annotators", type=int, default=10)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument(
        "--pg-breakdown",
        action="store_true",
        help="PostgreSQL's CPU per kind of statement (from the backend's schedstat)",
    )
    parser.add_argument(
        "--queries", action="store_true", help="print the statements of a few submits"
    )
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/skd_bench_profile"
        ),
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="skd-bench-profile-"))
    env = {
        "DATABASE_URL": args.pg,
        "SKD_VAR_DIR": str(work / "var"),
        "HF_HUB_OFFLINE": "1",
        "DJANGO_ENV": "production",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": os.urandom(24).hex(),
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "SKD_BENCH_ENDPOINTS": "1",
    }
    os.environ.update(env)
    load.recreate_database(args.pg)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0", "--skip-checks"],
        env=os.environ,
        cwd=ROOT,
        check=True,
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.wsgi import get_wsgi_application
    from django.db import connections

    from annotation.models import Item
    from annotation.services.campaigns import campaign_create

    corpus = load.build_corpus(args.items)
    campaign = campaign_create(
        corpus=corpus,
        name="profile",
        size=args.items,
        judgments_per_item=3,
        gold_share=0.1,
        lease_seconds=600,
        seed=1,
        speed_floor=0.0,
        straight_line_run=1000,
    )
    gold = {
        (h, r, t): ok
        for h, r, t, ok in Item.objects.filter(campaign=campaign, is_gold=True).values_list(
            "head__text", "relation__name", "tail", "gold_acceptable"
        )
    }
    tokens = [token for _, token in load.make_annotators(args.annotators, campaign)]
    app = get_wsgi_application()
    items: dict[str, dict] = {}
    for token in tokens:
        code, data = wsgi_call(app, "POST", f"/api/campaigns/{campaign.pk}/next/", token)
        assert code == 200, (code, data)
        items[token] = json.loads(data)

    def submit(token: str) -> None:
        item = items[token]
        truth = gold.get((item["head"], item["relation"], item["tail"]))
        value = 1 if truth is None else (2 if truth else -2)
        body = json.dumps({"value": value}).encode()
        path = f"/api/assignments/{item['assignment_id']}/judgment/?next=1"
        code, data = wsgi_call(app, "POST", path, token, body)
        assert code == 201, (code, data)
        items[token] = json.loads(data)["next"]

    for n in range(30 * len(tokens)):  # past every annotator's early gold window
        submit(tokens[n % len(tokens)])

    def measure(label: str, run, n: int, profile: cProfile.Profile | None = None) -> None:
        pg_before = {pid: load._cpu_of(pid) for pid in load._postgres_pids(args.pg)}
        cpu, wall = time.process_time(), time.perf_counter()
        if profile:
            profile.enable()
        for i in range(n):
            run(i)
        if profile:
            profile.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        pg = sum(
            load._cpu_of(pid) - pg_before.get(pid, 0.0) for pid in load._postgres_pids(args.pg)
        )
        print(
            f"{label:<22} {n:>6} requests: python {1000 * cpu / n:.2f} ms CPU each, "
            f"postgres {1000 * pg / n:.2f} ms, wall {1000 * wall / n:.2f} ms"
            + ("  (under cProfile)" if profile else "")
        )

    def bare(i: int) -> None:
        code, _ = wsgi_call(app, "GET", "/api/bench/bare/", tokens[i % len(tokens)])
        assert code == 200

    if args.queries:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            for i in range(20):
                submit(tokens[i % len(tokens)])
        print(f"{len(captured)} statements in 20 combined submits:")
        for query in captured:
            print(f"  {query['time']}s  {' '.join(query['sql'].split())[:300]}")
    if args.pg_breakdown:
        pg_breakdown(submit, tokens, args.requests)
    measure("bare endpoint", bare, args.requests)
    measure("combined submit", lambda i: submit(tokens[i % len(tokens)]), args.requests)
    if not args.no_profile:
        profile = cProfile.Profile(time.process_time)  # CPU, not waits
        measure(
            "combined submit", lambda i: submit(tokens[i % len(tokens)]), args.requests, profile
        )
        stats = pstats.Stats(profile)
        stats.sort_stats(args.sort).print_stats(args.top)
    connections.close_all()
    load.drop_database(args.pg)


if __name__ == "__main__":
    main()
