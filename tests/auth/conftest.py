"""Helpers for the account and security tests (the shared fixtures live in tests/conftest.py)."""

from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from portal.extensions import db
from tests.conftest import csrf_from


@pytest.fixture
def post_login(app):
    """post_login(client, phone, password, next=None) → the response of a real login attempt
    (fetches the form first, so the CSRF token belongs to ``client``'s session)."""

    def post(client, phone, password, next=None):
        token = csrf_from(client.get("/login"))
        url = "/login" if next is None else "/login?" + urlencode({"next": next})
        return client.post(url, data={"phone": phone, "password": password,
                                      "csrf_token": token})

    return post


@pytest.fixture
def is_logged_in(app):
    """is_logged_in(client) → True when ``client``'s session is accepted: a page every account
    may open answers 200, rather than redirecting to the login page."""

    def check(client) -> bool:
        r = client.get("/account/password")
        if r.status_code == 200:
            return True
        assert r.status_code == 302 and r.headers["Location"].startswith("/login"), r.status_code
        return False

    return check


@pytest.fixture
def snapshot(app):
    """snapshot() → every row of every table, to prove a refused request wrote nothing."""

    def take() -> dict[str, list[tuple]]:
        db.session.expire_all()
        out = {}
        for table in db.metadata.sorted_tables:
            rows = db.session.execute(select(table)).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
        return out

    return take
