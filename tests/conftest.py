"""Fixtures, flaskr-style: one app and schema per session (built by the migrations), tables
emptied after each test; factories are fixtures returning callables.

Set PORTAL_TEST_DATABASE_URL=postgresql://… to run everything on PostgreSQL.
"""

import contextvars
import io
import os
import re
import threading
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import create_engine, event, make_url, text

from portal import create_app
from portal.errors import ServiceError
from portal.extensions import db, limiter

TEST_DB_URL = os.environ.get("PORTAL_TEST_DATABASE_URL")
PASSWORD = "test-pass-123"
OUTPUT = Path(__file__).parent.parent / "test-output"


def pytest_report_header(config):
    return f"database: {'PostgreSQL' if TEST_DB_URL else 'SQLite'}"


class IsolatedClient(FlaskClient):
    """Runs each request in an empty context, as a server would: its own app context, ``g``
    and database session, not the test's (which stays pushed for the factories)."""

    def open(self, *args, **kwargs):
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture(scope="session")
def _app(tmp_path_factory):
    base = tmp_path_factory.mktemp("portal")
    url = TEST_DB_URL or f"sqlite:///{base}/test.db"
    app = create_app({
        "TESTING": True,
        "DATABASE_URL": url,
        "SECRET_KEY": "test-secret",
        "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
        "UPLOAD_DIR": str(base / "uploads"),
        "IMPORT_DIR": str(base / "imports"),
        "RATELIMIT_STORAGE_URI": "memory://",
    })
    app.test_client_class = IsolatedClient
    with app.app_context():
        reset_schema()
        from flask_migrate import upgrade

        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


def reset_schema():
    """Drop every table (and Alembic's version row) so the migrations start from empty."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    else:
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


def empty_tables():
    tables = [t.name for t in db.metadata.sorted_tables]
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in reversed(tables):
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture
def app(_app):
    with _app.app_context():
        yield _app
        db.session.rollback()
        db.session.remove()
        empty_tables()
    limiter.reset()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# -- factories --------------------------------------------------------------------------------
@pytest.fixture
def make_user(app):
    from portal.blueprints.auth.services import create_user

    counter = iter(range(10_000))

    def make(name="测试用户", phone=None, password=PASSWORD, role=None, region=None):
        phone = phone or f"137{next(counter):08d}"
        user = create_user(None, phone, name, password)
        if role:
            from portal.blueprints.regions.models import Post

            db.session.add(Post(user_id=user.id, region_id=region.id if region else None,
                                role=role))
        db.session.commit()
        return user

    return make


@pytest.fixture
def make_region(app):
    from portal.blueprints.regions.services import create_region

    def make(name, parent=None):
        region = create_region(None, parent, name)
        db.session.commit()
        return region

    return make


@pytest.fixture
def make_household(app):
    from portal.blueprints.regions.models import HouseholdTag
    from portal.blueprints.regions.services import create_household

    counter = iter(range(10_000))

    def make(neighborhood, head_name=None, tags=(), phone=None, created_ago=timedelta(days=400),
             special_ago=None, **fields):
        n = next(counter)
        tag_ids = [db.session.scalar(db.select(HouseholdTag.id).where(
            HouseholdTag.town_id == neighborhood.town_id, HouseholdTag.name == t)) for t in tags]
        data = {"address": fields.get("address", f"测试路{n}号"),
                "head_name": head_name or f"户主{n}", "phone": phone,
                "member_count": fields.get("member_count", 3)}
        household = create_household(None, neighborhood, data, tag_ids)
        from portal.clock import utcnow

        household.created_at = utcnow() - created_ago
        if household.special_since is not None:
            household.special_since = utcnow() - (special_ago or created_ago)
        db.session.commit()
        return household

    return make


@pytest.fixture
def world(make_region, make_user, make_household):
    """A town with two villages, each village → area → group → two 邻 with two households;
    one user per role in village 1 (and a 邻长 in village 2); the test password for all."""
    town = make_region("测试镇")
    w = SimpleNamespace(town=town)
    for v in (1, 2):
        village = make_region(f"村{v}", town)
        area = make_region(f"片{v}", village)
        group = make_region(f"组{v}", area)
        hoods = [make_region(f"邻{v}{k}", group) for k in (1, 2)]
        setattr(w, f"village{v}", village)
        setattr(w, f"area{v}", area)
        setattr(w, f"group{v}", group)
        setattr(w, f"hood{v}", hoods[0])
        setattr(w, f"hood{v}b", hoods[1])
        setattr(w, f"hh{v}", make_household(hoods[0], head_name=f"甲{v}", phone="13912345678",
                                            tags=("独居老人",)))
        setattr(w, f"hh{v}x", make_household(hoods[0], head_name=f"乙{v}"))
        setattr(w, f"hh{v}b", make_household(hoods[1], head_name=f"丙{v}"))
    w.admin = make_user("管理员", "13800000100", role="admin")
    w.town_staff = make_user("镇干部", "13800000101", role="town_staff", region=town)
    w.village_staff = make_user("村干部", "13800000102", role="village_staff", region=w.village1)
    w.area_chief = make_user("片长", "13800000103", role="area_chief", region=w.area1)
    w.group_chief = make_user("组长", "13800000104", role="group_chief", region=w.group1)
    w.neighbor_chief = make_user("邻长", "13800000105", role="neighbor_chief", region=w.hood1)
    w.volunteer = make_user("志愿者", "13800000106", role="volunteer", region=w.village1)
    w.neighbor_chief2 = make_user("邻长二", "13800000107", role="neighbor_chief", region=w.hood2)
    w.nobody = make_user("无岗位", "13800000108")
    return w


def load_user(user_id: int, refresh: bool = False):
    """A user with their posts and the posts' regions loaded (what a Scope reads)."""
    from sqlalchemy.orm import selectinload

    from portal.blueprints.auth.models import User
    from portal.blueprints.regions.models import Post

    q = db.select(User).options(selectinload(User.posts).joinedload(Post.region)).where(
        User.id == user_id)
    if refresh:
        q = q.execution_options(populate_existing=True)
    return db.session.execute(q).scalar_one()


@pytest.fixture
def scope_of(app):
    """scope_of(user) → the user's Scope, as a request would build it."""
    from portal.scope import Scope

    def build(user):
        return Scope.for_user(load_user(user.id, refresh=True))

    return build


@pytest.fixture
def login_as(app):
    """login_as(user) → a test client logged in as ``user`` (through the real login form)."""

    def login(user, password=PASSWORD):
        c = app.test_client()
        page = c.get("/login")
        token = csrf_from(page)
        r = c.post("/login", data={"phone": user.phone, "password": password,
                                   "csrf_token": token})
        assert r.status_code == 303, r.data.decode()[:500]
        return c

    return login


def csrf_from(response) -> str:
    m = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', response.data.decode()) \
        or re.search(r'"X-CSRFToken": "([^"]+)"', response.data.decode())
    assert m, "no CSRF token on the page"
    return m.group(1)


class Browser:
    """A logged-in test client with its CSRF token: ``post`` sends the token with the form."""

    def __init__(self, client):
        self.c = client
        self.token = csrf_from(client.get("/account/password"))

    def get(self, url, **kw):
        return self.c.get(url, **kw)

    def post(self, url, headers=None, **data):
        return self.c.post(url, data={"csrf_token": self.token, **data}, headers=headers)


@pytest.fixture
def count_queries(app):
    """with count_queries() as n: …; n.count is the number of SQL statements run."""
    from contextlib import contextmanager

    @contextmanager
    def counting():
        box = SimpleNamespace(count=0, statements=[])

        def before(conn, cursor, statement, params, context, executemany):
            box.count += 1
            box.statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", before)
        try:
            yield box
        finally:
            event.remove(db.engine, "before_cursor_execute", before)

    return counting


@pytest.fixture
def upload_folder(app):
    """upload_folder(kind) → the folder of one kind of uploaded photo, emptied now and after
    the test."""
    import shutil

    made = []

    def make(kind: str) -> Path:
        path = Path(app.config["UPLOAD_DIR"]) / kind
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        made.append(path)
        return path

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def output_dir(request):
    """test-output/<test name>/ for screenshots and other artefacts a person may look at."""
    path = OUTPUT / re.sub(r"[^\w.-]+", "_", request.node.name)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def empty_db_url(tmp_path):
    """The URL of a new, empty database on the suite's engine, removed afterwards.

    On PostgreSQL it is a fresh schema of the test database, put first on the search path: unlike
    a new database it can be dropped while autovacuum or a pooled connection still looks at it.
    """
    if not TEST_DB_URL:
        yield f"sqlite:///{tmp_path}/empty.db"
        return
    base = make_url(TEST_DB_URL).set(drivername="postgresql+psycopg")
    schema = f"empty_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = base.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# -- 议事 factories (items and meetings made through the services on the ``world``) ----------
#: The agenda tests' fixed clock (tests/agenda/conftest.py NOW).
AGENDA_NOW = datetime(2026, 11, 16, 2, 0)


@pytest.fixture
def category(app):
    """category(town, k=0) → the id of the town's k-th 六议 item."""
    from portal.blueprints.agenda import services as svc

    def get(town, k=0):
        return svc.deliberation_items(town.id)[k].id

    return get


@pytest.fixture
def make_item(app, category, scope_of):
    """make_item(region, actor, title=…) → a proposed AgendaItem raised through the service."""
    from portal.blueprints.agenda import services as svc

    def make(region, actor, title="山塘输水洞修缮", off_list=False, **fields):
        data = {"title": title, "background": fields.get("background", "输水洞堵塞，下游农田缺水。"),
                "proposal": fields.get("proposal", "组织村民投工投劳疏通。"),
                "category_id": "off" if off_list else str(category(actor_town(region)))}
        item = svc.raise_item(actor, scope_of(actor), region, data)
        db.session.commit()
        return item

    return make


def actor_town(region):
    from portal.blueprints.regions.models import Region

    return db.session.get(Region, region.town_id)


@pytest.fixture
def make_meeting(app, scope_of):
    """make_meeting(region, actor, kind="kentan", items=[(item, rule, mode)…], open=False)."""
    from portal.blueprints.agenda import services as svc

    def make(region, actor, kind="kentan", title="十一月民情恳谈会", items=(), open=False,
             minutes=60, starts_at=AGENDA_NOW + timedelta(days=1)):
        scope = scope_of(actor)
        meeting = svc.save_meeting(actor, scope, None, region, {
            "kind": kind, "title": title, "starts_at": starts_at, "planned_minutes": minutes})
        for entry in items:
            item, rule, mode = entry
            svc.schedule(actor, scope, item, meeting,
                         {"planned_minutes": 15, "rule": rule, "vote_mode": mode})
        if open:
            svc.open_meeting(actor, scope, meeting, now=AGENDA_NOW)
        db.session.commit()
        return meeting

    return make


def run_at_once(app, jobs, timeout=30):
    """Run each job ``(prepare, act)`` in its own thread, app context and session; they all act
    together once each has loaded what it needs (``prepare()``), and each commits. Returns per
    job what ``act`` returned, ("refused", message) for a ServiceError, or ("error", repr) for
    anything else (the race tests' failure)."""
    ready = threading.Barrier(len(jobs), timeout=timeout)
    results = [None] * len(jobs)

    def run(k, prepare, act):
        with app.app_context():
            try:
                state = prepare()
                ready.wait()
                results[k] = act(state)
                db.session.commit()
            except ServiceError as e:
                db.session.rollback()
                results[k] = ("refused", e.message)
            except Exception as e:  # noqa: BLE001 — anything else is the failure we look for
                db.session.rollback()
                results[k] = ("error", repr(e))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(k, *job)) for k, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads)
    return results


def jpeg(size=(3000, 2000), *, exif=None, comment=None, fmt="JPEG", mode="RGB") -> bytes:
    img = Image.new(mode, size, (200, 40, 40) if mode == "RGB" else (200, 40, 40, 255))
    out = io.BytesIO()
    kwargs = {}
    if exif is not None:
        kwargs["exif"] = exif
    if comment is not None:
        kwargs["comment"] = comment
    img.save(out, fmt, **kwargs)
    return out.getvalue()


@pytest.fixture
def make_image():
    """make_image(size, exif=Image.Exif(), comment=b"", fmt="JPEG") → encoded image bytes."""
    return jpeg
