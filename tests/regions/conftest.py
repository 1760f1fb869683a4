"""Helpers for the region-tree, household and post tests (shared fixtures: tests/conftest.py)."""

import json
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from tests.conftest import csrf_from


@pytest.fixture
def page_token(app):
    """page_token(client, url) → the CSRF token on that page of ``client``'s session."""

    def get(client, url) -> str:
        r = client.get(url)
        assert r.status_code == 200, (url, r.status_code)
        return csrf_from(r)

    return get


@pytest.fixture
def submit(app):
    """submit(client, page, data, action=None) → the response of POSTing ``data`` the way a
    person does: open ``page`` (must answer 200), take its CSRF token, post to ``action``
    (default: the page itself). ``data`` values may be lists (several checkboxes)."""

    def post(client, page, data, action=None):
        r = client.get(page)
        assert r.status_code == 200, (page, r.status_code)
        return client.post(action or page, data={**data, "csrf_token": csrf_from(r)})

    return post


@pytest.fixture
def audit(app):
    """audit(action=None) → the audit rows (oldest first) as dicts with the detail parsed."""
    from portal.audit import AuditEntry

    def rows(action=None):
        db.session.expire_all()
        q = select(AuditEntry).order_by(AuditEntry.id)
        if action:
            q = q.where(AuditEntry.action == action)
        return [{"user_id": e.user_id, "action": e.action, "object_id": e.object_id,
                 "region_path": e.region_path, "detail": json.loads(e.detail),
                 "raw": e.detail} for e in db.session.scalars(q)]

    return rows


@pytest.fixture
def count(app):
    """count(Model) → number of rows (read fresh)."""

    def n(model) -> int:
        db.session.expire_all()
        return db.session.scalar(select(func.count()).select_from(model))

    return n


@pytest.fixture
def snapshot(app):
    """snapshot() → every row of every table, to show a refused request wrote nothing."""

    def take() -> dict:
        with db.engine.connect() as conn:
            return {t.name: conn.execute(select(t).order_by(*t.primary_key.columns)).all()
                    for t in db.metadata.sorted_tables}

    return take


@pytest.fixture
def town2(make_region, make_household):
    """A second town with one 邻 and one household (for moves across towns)."""
    town = make_region("第二镇")
    group = make_region("二镇组", make_region("二镇片", make_region("二镇村", town)))
    hood = make_region("二镇邻", group)
    return SimpleNamespace(town=town, group=group, hood=hood,
                           hh=make_household(hood, head_name="丁"))
