"""Benchmark: 300 households vote at once on their own phones, against gunicorn on PostgreSQL.

    runuser -u postgres -- createdb -O portal portal_votebench      # once
    .venv/bin/python bench/votes.py --database-url postgresql://portal:portal@127.0.0.1:5432/portal_votebench

Steps: ``flask db upgrade`` on the bench database; a new town (its name carries the run's time,
so runs do not collide) with one village of ``--households`` households, a staff member, a
民情恳谈会 opened with every household checked in (each gets its one-time code) and one item open
for a household vote (到会过半). Then gunicorn (``--workers`` sync workers on a free port of
127.0.0.1) serves the app, and ``--threads`` client threads play the residents (plain
http.client, no dependencies), in two bursts as at a meeting: first everyone enters their code at
once (GET /v for the CSRF token and session cookie, POST /v with the code, GET /v/ballot), then
the chair calls the vote and everyone presses their button at once (POST /v/ballot/<item_id>
with ``choice``; this POST is the timed "vote"). Every response must be the expected 200/303
(anything else is an error). Afterwards the Vote rows are compared with the choices sent,
household by household, and the vote is closed through the service: the locked result must equal
the counts sent. Prints JSON and writes bench/results/votes-<timestamp>.json; the exit status is 1
when there were errors, the tally is not exact, or the run took longer than ``--deadline``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv" / "bin"
DEFAULT_URL = "postgresql://portal:portal@127.0.0.1:5432/portal_votebench"
SECRET = "votes-bench-secret-key-not-for-production"
TOKEN = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=os.environ.get("PORTAL_VOTEBENCH_DATABASE_URL",
                                                            DEFAULT_URL))
    p.add_argument("--households", type=int, default=300)
    p.add_argument("--threads", type=int, default=30, help="residents voting at the same time")
    p.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    p.add_argument("--deadline", type=float, default=60.0,
                   help="seconds the voting may take in all (the run fails beyond it)")
    p.add_argument("--seed", type=int, default=4)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return p.parse_args(argv)


def env_for(url: str) -> dict:
    env = dict(os.environ)
    env.update({
        "FLASK_APP": "portal",
        "PORTAL_DATABASE_URL": url,
        "PORTAL_SECRET_KEY": SECRET,
        # Only wrong codes count against the per-address budget, but be generous anyway: in the
        # bench every phone comes from 127.0.0.1 (at a 议事亭, from one Wi-Fi address).
        "PORTAL_AGENDA_CODE_LIMIT": "100000 per minute",
        "PORTAL_RATELIMIT_STORAGE_URI": "memory://",
    })
    return env


# -- setup -----------------------------------------------------------------------------------------
def migrate(url: str) -> None:
    subprocess.run([str(VENV / "flask"), "db", "upgrade"], cwd=ROOT, env=env_for(url),
                   check=True, capture_output=True)


def build(url: str, households: int) -> dict:
    """A village with ``households`` households, an open meeting where all are checked in, and
    one item open for a household vote. Returns the item id and each household's code."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from portal import create_app
    from portal.blueprints.agenda import services as svc
    from portal.blueprints.auth.models import User
    from portal.blueprints.auth.services import create_user
    from portal.blueprints.regions.models import Post
    from portal.blueprints.regions.services import create_household, create_region
    from portal.clock import utcnow
    from portal.extensions import db
    from portal.scope import Scope

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET})
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    with app.app_context():
        town = create_region(None, None, f"投票压测镇{stamp}")
        village = create_region(None, town, "压测村")
        group = create_region(None, create_region(None, village, "一片"), "一组")
        hoods = [create_region(None, group, f"第{k + 1}邻") for k in range((households + 29) // 30)]
        homes = [create_household(None, hoods[k // 30], {
            "address": f"压测路{k + 1}号", "head_name": f"户主{k + 1}", "phone": None,
            "member_count": 3}, []) for k in range(households)]
        phone = "139" + stamp.replace("-", "")[-8:]
        staff = create_user(None, phone, "压测村干部", "bench-pass-123")
        db.session.add(Post(user_id=staff.id, region_id=village.id, role="village_staff"))
        db.session.commit()
        staff = db.session.execute(select(User).options(
            selectinload(User.posts).joinedload(Post.region)).where(User.id == staff.id)).scalar_one()
        scope = Scope.for_user(staff)
        item = svc.raise_item(staff, scope, village, {
            "title": "村道安装太阳能路灯", "background": "村道夜间没有照明，老人出行不便。",
            "proposal": "安装三十盏太阳能路灯，费用由村集体承担。",
            "category_id": str(svc.deliberation_items(town.id)[0].id)})
        meeting = svc.save_meeting(staff, scope, None, village, {
            "kind": "kentan", "title": "压测民情恳谈会", "starts_at": utcnow(),
            "planned_minutes": 60})
        svc.schedule(staff, scope, item, meeting,
                     {"planned_minutes": 15, "rule": "present_majority",
                      "vote_mode": "household"})
        svc.open_meeting(staff, scope, meeting)
        codes = {}
        for hh in homes:
            att, _ = svc.check_in(staff, scope, meeting, hh)
            codes[hh.id] = att.code
        svc.open_vote(staff, scope, item)
        db.session.commit()
        info = {"item_id": item.id, "meeting_id": meeting.id, "staff_id": staff.id,
                "codes": codes, "town": town.name}
        db.session.remove()
        db.engine.dispose()
    return info


# -- gunicorn --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(url: str, port: int, workers: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(VENV / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}",
         "--backlog", "512", "--log-level", "warning", "portal:create_app()"],
        cwd=ROOT, env=env_for(url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited: " + proc.stderr.read().decode()[-2000:])
        try:
            status, _, _ = request(port, "GET", "/health", timeout=2)
            if status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    stop_gunicorn(proc)
    raise RuntimeError("gunicorn did not answer /health within 30 s")


def stop_gunicorn(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# -- one resident ----------------------------------------------------------------------------------
def request(port, method, path, body=None, cookie=None, timeout=30):
    """One request on a new connection (gunicorn's sync workers close it after the response).
    Returns (status, headers, body text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {}
        if cookie:
            headers["Cookie"] = cookie
        if body is not None:
            body = urllib.parse.urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


class Resident:
    def __init__(self, port: int, code: str, item_id: int, choice: str):
        self.port, self.code, self.item_id, self.choice = port, code, item_id, choice
        self.cookie = self.token = None

    def _do(self, method, path, body=None, expect=200):
        status, headers, text = request(self.port, method, path, body, self.cookie)
        for header in headers.get_all("Set-Cookie") or ():
            name_value = header.split(";", 1)[0]
            if name_value.startswith("session="):
                self.cookie = name_value
        if status != expect:
            snippet = re.sub(r"\s+", " ", text)[:200]
            raise AssertionError(f"{method} {path} → {status}, expected {expect}: {snippet}")
        return headers, text

    def _token(self, text):
        m = TOKEN.search(text)
        if not m:
            raise AssertionError("no csrf_token on the page")
        return m.group(1)

    def enter(self) -> float:
        """At check-in: open /v, type the code, see the ballot. Returns the milliseconds."""
        started = time.perf_counter()
        _, page = self._do("GET", "/v")
        headers, _ = self._do("POST", "/v", {"csrf_token": self._token(page), "code": self.code},
                              expect=303)
        if not headers.get("Location", "").endswith("/v/ballot"):
            raise AssertionError(f"code accepted but redirected to {headers.get('Location')}")
        _, ballot = self._do("GET", "/v/ballot")
        if f"/v/ballot/{self.item_id}" not in ballot:
            raise AssertionError("the item is not on the ballot")
        self.token = self._token(ballot)
        return (time.perf_counter() - started) * 1000

    def cast(self) -> float:
        """When the chair calls the vote: press 赞成 / 反对 / 弃权. Returns the milliseconds."""
        started = time.perf_counter()
        self._do("POST", f"/v/ballot/{self.item_id}",
                 {"csrf_token": self.token, "choice": self.choice}, expect=303)
        return (time.perf_counter() - started) * 1000


def run_phase(residents, step: str, threads: int, timeout: float):
    """Every resident does ``step`` at once (``threads`` at a time). Returns (milliseconds of
    the ones that succeeded, errors, wall seconds, residents that succeeded)."""
    timings, errors, done = [], [], []
    lock = threading.Lock()

    def play(r):
        try:
            ms = getattr(r, step)()
            with lock:
                timings.append(ms)
                done.append(r)
        except Exception as e:  # noqa: BLE001 — every failure is counted and reported
            with lock:
                errors.append(f"{step} {r.code}: {e!r}"[:300])

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(play, r) for r in residents]
        _, pending = wait(futures, timeout=max(timeout, 1))
        for f in pending:
            f.cancel()
    wall = time.perf_counter() - started
    if pending:
        errors.append(f"{step}: {len(pending)} residents not done in time")
    return timings, errors, wall, done


# -- verification ------------------------------------------------------------------------------------
def verify(url: str, info: dict, sent: dict[int, str]) -> dict:
    """The Vote rows equal the choices sent, household by household; then close the vote through
    the service and compare the locked result with the counts sent."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from portal import create_app
    from portal.blueprints.agenda import services as svc
    from portal.blueprints.agenda.models import AgendaItem, Vote
    from portal.blueprints.auth.models import User
    from portal.blueprints.regions.models import Post
    from portal.extensions import db
    from portal.scope import Scope

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET})
    with app.app_context():
        stored = dict(db.session.execute(select(Vote.household_id, Vote.choice)
                                         .where(Vote.item_id == info["item_id"])).all())
        by_code = db.session.scalar(select(db.func.count(Vote.id)).where(
            Vote.item_id == info["item_id"], Vote.recorded_by_id.is_(None)))
        expected = {c: sum(1 for v in sent.values() if v == c) for c in ("yes", "no", "abstain")}
        counted = {c: sum(1 for v in stored.values() if v == c) for c in ("yes", "no", "abstain")}
        staff = db.session.execute(select(User).options(
            selectinload(User.posts).joinedload(Post.region))
            .where(User.id == info["staff_id"])).scalar_one()
        item = db.session.get(AgendaItem, info["item_id"])
        result = svc.close_vote(staff, Scope.for_user(staff), item)
        db.session.commit()
        item = db.session.get(AgendaItem, info["item_id"])
        locked = {"yes": item.result_yes, "no": item.result_no, "abstain": item.result_abstain}
        out = {
            "sent": expected, "stored": counted, "locked_result": locked,
            "present": item.result_present, "result": result,
            "votes_by_code": by_code,
            "mismatched_households": sorted(h for h in set(sent) | set(stored)
                                            if sent.get(h) != stored.get(h))[:20],
        }
        out["exact"] = (stored == sent and counted == expected == locked
                        and by_code == len(sent) and item.result_present == len(info["codes"]))
        db.session.remove()
        db.engine.dispose()
    return out


def pct(values, q):
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 1)


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    t_setup = time.perf_counter()
    migrate(args.database_url)
    info = build(args.database_url, args.households)
    setup_s = time.perf_counter() - t_setup

    rng = random.Random(args.seed)
    sent = {hh: rng.choices(("yes", "no", "abstain"), weights=(6, 3, 1))[0]
            for hh in info["codes"]}
    port = free_port()
    proc = start_gunicorn(args.database_url, port, args.workers)
    try:
        residents = [Resident(port, info["codes"][hh], info["item_id"], sent[hh])
                     for hh in info["codes"]]
        load_before = os.getloadavg()
        # phase 1, at check-in: everyone enters their code at once
        entered, errors, enter_s, ready = run_phase(residents, "enter", args.threads,
                                                    args.deadline)
        # phase 2, the chair calls the vote: everyone presses their button at once
        votes, vote_errors, vote_s, _ = run_phase(ready, "cast", args.threads,
                                                  args.deadline - enter_s)
        errors += vote_errors
        wall_s = enter_s + vote_s
        load_after = os.getloadavg()
    finally:
        stop_gunicorn(proc)
        server_log = proc.stderr.read().decode("utf-8", "replace")[-2000:] if proc.stderr else ""

    tally = verify(args.database_url, info, sent)
    report = {
        "bench": "votes",
        "at": datetime.now().isoformat(timespec="seconds"),
        "households": args.households, "threads": args.threads, "workers": args.workers,
        "database": "postgresql", "server": "gunicorn (sync workers) on 127.0.0.1",
        "errors": len(errors), "error_samples": errors[:10],
        "votes_done": len(votes),
        "vote_post_ms": {"p50": pct(votes, 0.5), "p95": pct(votes, 0.95),
                         "max": pct(votes, 1.0),
                         "mean": round(statistics.fmean(votes), 1) if votes else None},
        "vote_phase_s": round(vote_s, 2),
        "votes_per_s": round(len(votes) / vote_s, 1) if vote_s else None,
        "enter_code_ms": {"p50": pct(entered, 0.5), "p95": pct(entered, 0.95),
                          "note": "GET /v, POST /v (code), GET /v/ballot"},
        "enter_phase_s": round(enter_s, 2),
        "wall_s": round(wall_s, 2),
        "setup_s": round(setup_s, 1),
        "tally": tally,
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in load_after]},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU, {platform.system()}",
        "python": platform.python_version(),
        "town": info["town"],
    }
    if server_log.strip():
        report["server_log_tail"] = server_log
    ok = not errors and tally["exact"] and wall_s <= args.deadline
    report["ok"] = ok
    text = json.dumps(report, ensure_ascii=False, indent=2)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"votes-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(text + "\n", encoding="utf-8")
    print(f"written to {path.relative_to(ROOT)}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
