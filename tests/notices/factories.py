"""Notices and call-outs made through the services, for the notices tests and the shared access
tables (tests/test_access.py, tests/auth/test_auth.py)."""

from datetime import timedelta

from portal.blueprints.notices import services as svc
from portal.clock import utcnow
from portal.extensions import db
from portal.scope import Scope


def scope_for(user):
    from tests.conftest import load_user

    return Scope.for_user(load_user(user.id, refresh=True))


def publish(publisher, region, title="冬季防火安全检查", body="请逐户检查电线和取暖器。\n注意安全。",
            now=None):
    notice = svc.publish(publisher, scope_for(publisher), region, title, body, now=now)
    db.session.commit()
    return notice


def callout(creator, region, *, starts_in=timedelta(days=2), cap=None, title="一起清理篮球坪杂草",
            signups=()):
    """A call-out by ``creator`` for ``region``, starting ``starts_in`` from now (a negative
    value makes one that is over), with ``signups`` of (name, phone, people) made before it
    started."""
    now = utcnow()
    created = now - timedelta(days=3) if starts_in <= timedelta(0) else now
    row = svc.create_callout(creator, scope_for(creator), region, {
        "title": title, "task": "自带手套，一起扯杂草。", "place": "篮球坪",
        "starts_at": created + timedelta(days=1) if starts_in <= timedelta(0) else now + starts_in,
        "cap": cap}, now=created)
    db.session.flush()
    for name, phone, people in signups:
        svc.sign_up(row, {"name": name, "phone": phone, "people": people, "note": ""},
                    now=created)
    if starts_in <= timedelta(0):
        row.starts_at = now + starts_in
    db.session.commit()
    return row
