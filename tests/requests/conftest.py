"""Fixtures for 民情诉求: a request factory on the shared ``world``, and a fixed clock."""

import uuid
from datetime import datetime, timedelta

import pytest

from portal.extensions import db

#: A fixed "now" (UTC) for rule tests: Monday 2026-11-16 02:00 UTC = 10:00 in Asia/Shanghai.
NOW = datetime(2026, 11, 16, 2, 0)
HOUR = timedelta(hours=1)


@pytest.fixture
def make_request(app):
    """make_request(household, description=…, category=name, at=datetime, actor=None) → Request,
    submitted through the service as a resident would (actor None) or for them."""
    from portal.blueprints.requests import services as svc
    from portal.blueprints.requests.models import RequestCategory

    def make(household, description="楼道灯坏了，晚上看不见。", category="安全隐患", at=NOW,
             actor=None, contact_phone=None, photo=None):
        cat = db.session.scalar(db.select(RequestCategory).where(
            RequestCategory.town_id == household.neighborhood.town_id,
            RequestCategory.name == category))
        req, created = svc.submit(
            household, {"category_id": cat.id, "description": description,
                        "contact_name": "住户", "contact_phone": contact_phone,
                        "contact_note": ""},
            source="chief" if actor else "resident", actor=actor, photo=photo,
            token=str(uuid.uuid4()), now=at)
        assert created
        db.session.commit()
        return req

    return make


@pytest.fixture
def load_household(app):
    """The household with its 邻 loaded, as the services expect (relationships raise)."""
    from sqlalchemy.orm import joinedload

    from portal.blueprints.regions.models import Household

    def load(household_id):
        return db.session.execute(db.select(Household).options(
            joinedload(Household.neighborhood)).where(Household.id == household_id)).scalar_one()

    return load


@pytest.fixture
def new_request(make_request, load_household):
    """new_request(household, **kw): make_request with the household's 邻 loaded."""
    return lambda household, **kw: make_request(load_household(household.id), **kw)


@pytest.fixture
def clock(monkeypatch):
    """The resident's pages see clock["now"] (NOW unless the test moves it)."""
    from portal.blueprints.requests import public

    box = {"now": NOW}
    monkeypatch.setattr(public, "utcnow", lambda: box["now"])
    return box
