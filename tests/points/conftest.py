"""Helpers for the 积分 tests: checklist items, ledger reads, and posts on the shared ``world``."""

from datetime import datetime

import pytest
from sqlalchemy import func, select

from portal.blueprints.duties.models import ChecklistItem
from portal.blueprints.points.models import PointsEntry, PointsRule
from portal.blueprints.regions.models import Post
from portal.extensions import db
from tests.requests.conftest import load_household, make_request, new_request  # noqa: F401


def item(town, kind="duty", k=0) -> ChecklistItem:
    """The k-th checklist item of a kind (duty: 七员; negative: 六不得) of a town."""
    return list(db.session.scalars(select(ChecklistItem).where(
        ChecklistItem.town_id == town.id, ChecklistItem.kind == kind)
        .order_by(ChecklistItem.sort, ChecklistItem.id)))[k]


def entries(user=None, **where) -> list[PointsEntry]:
    q = select(PointsEntry).order_by(PointsEntry.id)
    if user is not None:
        q = q.where(PointsEntry.user_id == user.id)
    for k, v in where.items():
        q = q.where(getattr(PointsEntry, k) == v)
    return list(db.session.scalars(q))


def deltas(user=None, **where) -> list[int]:
    return [e.delta for e in entries(user, **where)]


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def rule_of(entry: PointsEntry) -> PointsRule:
    return db.session.get(PointsRule, entry.rule_id)


def post_of(user, role=None) -> Post:
    q = select(Post).where(Post.user_id == user.id)
    if role:
        q = q.where(Post.role == role)
    return db.session.scalars(q).first()


def utc(*args) -> datetime:
    return datetime(*args)


@pytest.fixture
def give(app):
    """give(user, region, points, at, source_id) → an award of ``points`` by a 表彰 rule changed
    to that value (no caps), to give someone a balance to spend."""
    from portal.blueprints.points import services as svc

    counter = iter(range(1, 100_000))

    def give_(user, region, at, n=1):
        ids = [svc.award(user.id, "commendation", "commendation", next(counter), at=at,
                         path=region.path) for _ in range(n)]
        db.session.commit()
        return ids

    return give_
