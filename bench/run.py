"""Server-side benchmark of the 邻长's pages and the dashboards, in process (no network).

    .venv/bin/python bench/run.py --database-url postgresql://portal:portal@127.0.0.1:5432/portal_bench

Seeds the scale data first when the database has no households (``--households``, default
400,000 → 30,000 邻长, ~5,000,000 logs). Then, through the Flask test client, times each request
with ``time.perf_counter`` (view, templates, SQL and gzip; no sockets) for:

* ``home``            GET /duties/ as a 邻长 (rotating over many different 邻长)
* ``log_form``        GET /duties/households/<id>/log, the htmx partial (HX-Target hh-<id>)
* ``log_save``        POST of that form with its CSRF token and one-time token (303)
* ``row``             GET of the refreshed household row htmx follows the 303 to
* ``dashboard_town``  GET /duties/dashboard?region=<town> as town staff
* ``dashboard_village`` the same for a village, as village staff
* ``req_queue_*``     GET /requests/ (the handler's queue) as a 邻长, a 组长, village and town staff
* ``req_stats_month`` GET /requests/stats?region=<town> for last calendar month, as town staff
* ``req_stats_year``  the same for the last 365 days
* ``req_overdue_*``   GET /requests/overdue?level=0 as town staff; the default tab as village staff
* ``ledgers_dashboard_town`` GET /ledgers/dashboard?region=<town> (工作概况: this month's figures,
  12 months of trends) as town staff; ``ledgers_dashboard_village`` the same for a village.
  The closed months' duty-log counts are cached (ledgers/dashboard.py): the warm-up requests
  fill the cache, so the timed ones measure the warm page (``--pages ledgers``)

The 民情诉求 pages need requests: ``--request-rows`` (200,000) are loaded first when the table is
empty (bench/requests_data.py).

and reports p50/p95 (median over ``--runs`` runs, and over all requests pooled), the SQL
statements per request, and the gzip weights of the first load of the 邻长 home. Results go to
bench/results/<timestamp>.json. Budgets: DESIGN.md §6.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from flask_login import FlaskLoginClient
from sqlalchemy import event, func, select

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql://portal:portal@127.0.0.1:5432/portal_bench"
#: DESIGN.md §6 (milliseconds, bytes)
BUDGET_MS = {"home": 50, "dashboard_town": 150, "ledgers_dashboard_town": 150}
BUDGET_BYTES = {"home_html": 8 * 1024, "app_css": 6 * 1024, "log_partial": 4 * 1024,
                "first_load": 30 * 1024}
MAX_QUERIES = 8


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=os.environ.get("PORTAL_BENCH_DATABASE_URL",
                                                            DEFAULT_URL))
    p.add_argument("--households", type=int, default=400_000,
                   help="scale data to load when the database has no households")
    p.add_argument("--requests", type=int, default=300, help="timed requests per page per run")
    p.add_argument("--runs", type=int, default=3, help="runs; the report takes their median")
    p.add_argument("--warmup", type=int, default=30, help="untimed requests per page first")
    p.add_argument("--request-rows", type=int, default=200_000,
                   help="民情诉求 to load when the database has none")
    p.add_argument("--pages", default="home,log,dashboards,requests",
                   help="comma-separated subset of: home, log, dashboards, requests, ledgers")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return p.parse_args(argv)


# -- setup -------------------------------------------------------------------------------------
def make_app(url: str):
    from portal import create_app

    app = create_app({
        "DATABASE_URL": url,
        "SECRET_KEY": "bench-secret",
        "RATELIMIT_STORAGE_URI": "memory://",
        # one real login per role goes through /login; the rest reuse a session cookie
        "LOGIN_RATE_LIMIT": "1000 per minute",
    })
    app.test_client_class = FlaskLoginClient
    return app


def prepare(app, households: int, request_rows: int = 0) -> dict:
    """Migrate, seed if empty, and return row counts."""
    from flask_migrate import upgrade

    from portal.blueprints.duties.models import DutyLog
    from portal.blueprints.regions.models import Household, Post
    from portal.extensions import db

    with app.app_context():
        upgrade()
        if not db.session.scalar(select(Household.id).limit(1)):
            from portal.seed_scale import load_scale

            print(f"数据库里没有住户，先装入规模数据 ({households:,} 户)…")
            t = time.perf_counter()
            summary = load_scale(households, echo=print)
            print(f"装入用时 {time.perf_counter() - t:.0f}s: {summary}")
        if request_rows:
            from requests_data import load_requests

            load_requests(request_rows, echo=print)
        from portal.blueprints.requests.models import Request

        counts = {
            "households": db.session.scalar(select(func.count()).select_from(Household)),
            "requests": db.session.scalar(select(func.count()).select_from(Request)),
            "duty_logs": db.session.scalar(select(func.count()).select_from(DutyLog)),
            "neighbor_chiefs": db.session.scalar(select(func.count()).select_from(Post).where(
                Post.role == "neighbor_chief", Post.ended_at.is_(None))),
        }
        db.session.remove()
    return counts


def pick_people(app, rng: random.Random, n: int) -> dict:
    """Users (loaded, detached) per role, with the node their post is on."""
    from sqlalchemy.orm import joinedload

    from portal.blueprints.regions.models import Household, Post
    from portal.extensions import db

    out = {}
    with app.app_context():
        for role in ("neighbor_chief", "town_staff", "village_staff", "group_chief"):
            post_ids = list(db.session.scalars(select(Post.id).where(
                Post.role == role, Post.ended_at.is_(None)).order_by(Post.id)))
            chosen = rng.sample(post_ids, min(n, len(post_ids)))
            posts = list(db.session.scalars(select(Post).options(
                joinedload(Post.user), joinedload(Post.region))
                .where(Post.id.in_(chosen))).unique())
            rng.shuffle(posts)
            out[role] = [(p.user, p.region_id) for p in posts]
        hh = {}
        chief_hoods = [rid for _, rid in out["neighbor_chief"]]
        for hid, nid in db.session.execute(select(Household.id, Household.neighborhood_id)
                                           .where(Household.neighborhood_id.in_(chief_hoods))):
            hh.setdefault(nid, []).append(hid)
        out["households"] = hh
        db.session.expunge_all()
        db.session.remove()
    return out


# -- measuring ---------------------------------------------------------------------------------
class Counter:
    def __init__(self, engine):
        self.n = 0
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *args):
        self.n += 1


GZIP = {"Accept-Encoding": "gzip"}


def timed(counter: Counter, fn, *args, **kwargs):
    before = counter.n
    t = time.perf_counter()
    r = fn(*args, **kwargs)
    ms = (time.perf_counter() - t) * 1000
    return r, ms, counter.n - before


def body(r) -> bytes:
    return gzip.decompress(r.data) if r.headers.get("Content-Encoding") == "gzip" else r.data


def gz_size(r) -> int:
    """Bytes on the wire with gzip (what Flask-Compress sent, or gzip -6 of the body)."""
    if r.headers.get("Content-Encoding") == "gzip":
        return len(r.data)
    return len(gzip.compress(r.data, 6))


def expect(r, status: int, what: str):
    if r.status_code != status:
        raise SystemExit(f"{what}: HTTP {r.status_code}, expected {status}\n"
                         f"{body(r).decode(errors='replace')[:800]}")


def field(html: str, name: str) -> str:
    m = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html) or \
        re.search(rf'value="([^"]*)"[^>]*name="{name}"', html)
    if not m:
        raise SystemExit(f"no {name} in the log form")
    return m.group(1)


def one_run(app, people, counter, n: int, warmup: int, rng: random.Random,
            pages: set[str]) -> dict:
    samples: dict[str, list[tuple[float, int]]] = {}
    sizes: dict[str, list[int]] = {"home_html": [], "log_partial": []}
    chiefs = people["neighbor_chief"]
    clients = {}

    def client(user):
        if user.id not in clients:
            clients[user.id] = app.test_client(user=user)
        return clients[user.id]

    def record(name, ms, queries, measured):
        if measured:
            samples.setdefault(name, []).append((ms, queries))

    # 邻长 home, rotating over different 邻长
    for i in range(warmup + n if "home" in pages else 0):
        user, _ = chiefs[i % len(chiefs)]
        r, ms, q = timed(counter, client(user).get, "/duties/", headers=GZIP)
        expect(r, 200, "GET /duties/")
        record("home", ms, q, i >= warmup)
        if i >= warmup:
            sizes["home_html"].append(gz_size(r))

    # log a duty: GET the htmx form, POST it, GET the refreshed row (as htmx does after a 303)
    for i in range(warmup + n if "log" in pages else 0):
        user, hood = chiefs[(i * 7 + 3) % len(chiefs)]
        hid = rng.choice(people["households"][hood])
        c = client(user)
        hx = {**GZIP, "HX-Request": "true", "HX-Target": f"hh-{hid}"}
        r, ms, q = timed(counter, c.get, f"/duties/households/{hid}/log", headers=hx)
        expect(r, 200, "GET log form")
        record("log_form", ms, q, i >= warmup)
        html = body(r).decode()
        if i >= warmup:
            sizes["log_partial"].append(gz_size(r))
        data = {"csrf_token": field(html, "csrf_token"), "token": field(html, "token"),
                "duty_item_id": field(html, "duty_item_id"),
                "method": rng.choice(["visit", "phone", "wechat"]),
                "occurred_at": field(html, "occurred_at"), "note": "bench"}
        r, ms, q = timed(counter, c.post, f"/duties/households/{hid}/log", data=data,
                         headers={**hx, "X-CSRFToken": data["csrf_token"]})
        expect(r, 303, "POST log")
        record("log_save", ms, q, i >= warmup)
        r, ms, q = timed(counter, c.get, r.headers["Location"], headers=hx)
        expect(r, 200, "GET row")
        record("row", ms, q, i >= warmup)

    for role, name in (("town_staff", "dashboard_town"), ("village_staff", "dashboard_village")):
        staff = people[role]
        for i in range(warmup + n if "dashboards" in pages else 0):
            user, region_id = staff[i % len(staff)]
            r, ms, q = timed(counter, client(user).get, f"/duties/dashboard?region={region_id}",
                             headers=GZIP)
            expect(r, 200, f"GET dashboard {role}")
            record(name, ms, q, i >= warmup)

    if "requests" in pages:
        _request_pages(people, client, counter, record, n, warmup)

    # the 工作概况 (ledgers dashboard): this month's figures and 12 months of trends
    for role, name in (("town_staff", "ledgers_dashboard_town"),
                       ("village_staff", "ledgers_dashboard_village")):
        staff = people[role]
        for i in range(warmup + n if "ledgers" in pages else 0):
            user, region_id = staff[i % len(staff)]
            r, ms, q = timed(counter, client(user).get, f"/ledgers/dashboard?region={region_id}",
                             headers=GZIP)
            expect(r, 200, f"GET ledgers dashboard {role}")
            record(name, ms, q, i >= warmup)

    out = {}
    for name, rows in samples.items():
        times = [ms for ms, _ in rows]
        out[name] = {"n": len(times), "p50": pct(times, 50), "p95": pct(times, 95),
                     "max": max(times), "queries": max(q for _, q in rows), "times": times}
    out["_sizes"] = sizes
    return out


def _request_pages(people, client, counter, record, n: int, warmup: int) -> None:
    """民情诉求: the handlers' queues, the town's figures, the overdue lists."""
    from requests_data import stats_periods

    pages = [
        ("req_queue_neighbor", "neighbor_chief", lambda region: "/requests/"),
        ("req_queue_group", "group_chief", lambda region: "/requests/"),
        ("req_queue_village", "village_staff", lambda region: "/requests/"),
        ("req_queue_town", "town_staff", lambda region: "/requests/"),
    ]
    for key, (start, end) in stats_periods().items():
        pages.append((f"req_stats_{key}", "town_staff",
                      lambda region, s=start, e=end:
                      f"/requests/stats?region={region}&start={s}&end={e}"))
    pages += [("req_overdue_town", "town_staff", lambda region: "/requests/overdue?level=0"),
              ("req_overdue_village", "village_staff", lambda region: "/requests/overdue")]
    for name, role, url in pages:
        staff = people[role]
        for i in range(warmup + n):
            user, region_id = staff[i % len(staff)]
            r, ms, q = timed(counter, client(user).get, url(region_id), headers=GZIP)
            expect(r, 200, f"GET {url(region_id)} as {role}")
            record(name, ms, q, i >= warmup)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def real_login(app, user, counter) -> float:
    """One login through the form (scrypt included), to check the seeded password works."""
    from portal.seed_scale import SCALE_PASSWORD

    c = app.test_client()
    page = c.get("/login")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.data.decode())
    r, ms, _ = timed(counter, c.post, "/login", data={
        "phone": user.phone, "password": SCALE_PASSWORD, "csrf_token": token.group(1)})
    expect(r, 303, f"login as {user.phone}")
    return ms


def weights(app, people, runs) -> dict:
    """gzip bytes of the first load: the 邻长 home (largest seen in the runs), the static files it
    links (by their hashed URLs), the no-JS log page and the htmx log-form partial."""
    user, hood = people["neighbor_chief"][0]
    c = app.test_client(user=user)
    r = c.get("/duties/", headers=GZIP)
    html = body(r).decode()
    home = [s for run in runs for s in run["_sizes"]["home_html"]] or [gz_size(r)]
    out = {"home_html": max(home), "home_html_median": int(statistics.median(home))}
    for key, pattern in (("app_css", r'href="(/static/app\.css\?v=[^"]+)"'),
                         ("htmx_js", r'src="(/static/vendor/htmx\.min\.js\?v=[^"]+)"')):
        m = re.search(pattern, html)
        if not m:
            raise SystemExit(f"{key} not linked from the 邻长 home")
        r = c.get(m.group(1), headers=GZIP)
        expect(r, 200, m.group(1))
        out[key], out[key + "_raw"] = gz_size(r), len(body(r))
        r.close()
    out["first_load"] = out["home_html"] + out["app_css"] + out["htmx_js"]
    hid = people["households"][hood][0]
    r = c.get(f"/duties/households/{hid}/log", headers=GZIP)
    expect(r, 200, "GET log page")
    out["log_page_html"] = gz_size(r)
    partial = [s for run in runs for s in run["_sizes"]["log_partial"]]
    if not partial:
        r = c.get(f"/duties/households/{hid}/log",
                  headers={**GZIP, "HX-Request": "true", "HX-Target": f"hh-{hid}"})
        partial = [gz_size(r)]
    out["log_partial"], out["log_partial_median"] = max(partial), int(statistics.median(partial))
    return out


# -- report ------------------------------------------------------------------------------------
def main(argv=None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    wanted = set(args.pages.split(","))
    app = make_app(args.database_url)
    counts = prepare(app, args.households,
                     args.request_rows if "requests" in wanted else 0)
    print(f"数据: {counts['households']:,} 户, {counts['duty_logs']:,} 条履职记录, "
          f"{counts['neighbor_chiefs']:,} 名邻长, {counts['requests']:,} 条民情诉求")
    people = pick_people(app, rng, max(args.requests, 50))
    with app.app_context():
        from portal.extensions import db

        engine = db.engine
    counter = Counter(engine)
    logins = {role: round(real_login(app, people[role][0][0], counter), 1)
              for role in ("neighbor_chief", "town_staff", "village_staff")}

    load_before = os.getloadavg()
    runs = []
    for k in range(args.runs):
        t = time.perf_counter()
        runs.append(one_run(app, people, counter, args.requests, args.warmup if k == 0 else 5,
                            rng, wanted))
        print(f"第 {k + 1}/{args.runs} 轮用时 {time.perf_counter() - t:.0f}s")
    load_after = os.getloadavg()

    pages = {}
    for name in [n for n in runs[0] if not n.startswith("_")]:
        pooled = [ms for run in runs for ms in run[name]["times"]]
        pages[name] = {
            "requests": len(pooled),
            "p50_ms": round(statistics.median(run[name]["p50"] for run in runs), 2),
            "p95_ms": round(statistics.median(run[name]["p95"] for run in runs), 2),
            "pooled_p50_ms": round(pct(pooled, 50), 2),
            "pooled_p95_ms": round(pct(pooled, 95), 2),
            "max_ms": round(max(pooled), 2),
            "max_queries": max(run[name]["queries"] for run in runs),
            "runs_p50_ms": [round(run[name]["p50"], 2) for run in runs],
            "runs_p95_ms": [round(run[name]["p95"], 2) for run in runs],
        }
    sizes = weights(app, people, runs)

    result = {
        "when": datetime.now().astimezone().isoformat(timespec="seconds"),
        "database": re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", args.database_url),
        "git": _git(), "python": platform.python_version(), "machine": _machine(),
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in load_after]},
        "data": counts, "requests_per_run": args.requests, "runs": args.runs,
        "login_ms": logins, "pages": pages, "weights_gzip_bytes": sizes,
        "budgets": {"ms_p95": BUDGET_MS, "bytes": BUDGET_BYTES, "queries": MAX_QUERIES},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(result, ensure_ascii=False, indent=2))
    print_report(result)
    print(f"\n结果已写入 {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    ok = all(pages[k]["p95_ms"] <= v for k, v in BUDGET_MS.items() if k in pages) and \
        all(sizes[k] <= v for k, v in BUDGET_BYTES.items())
    return 0 if ok else 1


def print_report(res: dict) -> None:
    print(f"\n{res['data']['households']:,} 户 · {res['data']['duty_logs']:,} 条记录 · "
          f"{res['data'].get('requests', 0):,} 条诉求 · "
          f"{res['runs']} 轮 × {res['requests_per_run']} 次 · {res['database']}")
    print(f"{'page':<19}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'SQL':>5}  budget p95")
    for name, s in res["pages"].items():
        budget = BUDGET_MS.get(name)
        mark = "" if budget is None else \
            f"  ≤ {budget} ms {'ok' if s['p95_ms'] <= budget else 'MISSED'}"
        qmark = "" if s["max_queries"] <= MAX_QUERIES else "!"
        print(f"{name:<19}{s['p50_ms']:>9.1f}{s['p95_ms']:>9.1f}{s['max_ms']:>9.1f}"
              f"{s['max_queries']:>4}{qmark:1}{mark}")
    w = res["weights_gzip_bytes"]
    print(f"\n{'weight (gzip)':<28}{'bytes':>8}  budget")
    for key, label in (("home_html", "邻长 home HTML (max)"), ("app_css", "app.css"),
                       ("htmx_js", "vendor/htmx.min.js"), ("first_load", "first load total"),
                       ("log_page_html", "log page HTML (no JS)"),
                       ("log_partial", "log-form partial (max)")):
        budget = BUDGET_BYTES.get(key)
        mark = "" if budget is None else \
            f"  ≤ {budget // 1024} KB {'ok' if w[key] <= budget else 'MISSED'}"
        print(f"{label:<28}{w[key]:>8,}{mark}")
    print(f"\nlogin through /login (scrypt): {res['login_ms']} ms")
    la = res["load_average"]
    print(f"load average before/after: {la['before'][0]} / {la['after'][0]} "
          f"({res['machine']})")
    if max(la["before"][0], la["after"][0]) > (os.cpu_count() or 1):
        print("注意: 机器负载高于 CPU 数，其他进程在抢 CPU，延迟数字偏高。")


def _git() -> str | None:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPU, {platform.system()}"


if __name__ == "__main__":
    sys.exit(main())
