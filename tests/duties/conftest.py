"""Fixtures for the duty-log and contact-rule tests.

Time-dependent code is tested at a fixed instant: ``frozen_now`` makes the duties views and
services see ``NOW`` (Wednesday 2026-01-21 12:00 in Asia/Shanghai) as the current time.
"""

from datetime import datetime
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from portal.extensions import db

#: Wednesday 2026-01-21 12:00 Asia/Shanghai. Week: Mon 19 – Sun 25 Jan; month: January;
#: quarter: Q1 2026. Far from every period boundary.
NOW = datetime(2026, 1, 21, 4, 0)


@pytest.fixture
def frozen_now(monkeypatch):
    """The duties views and services see NOW as the current time; returns NOW."""
    from portal.blueprints.duties import services, views

    monkeypatch.setattr(views, "utcnow", lambda: NOW)
    monkeypatch.setattr(services, "utcnow", lambda: NOW)
    return NOW


@pytest.fixture
def upload_dir(upload_folder):
    """The duty-photo folder, emptied before and after the test."""
    return upload_folder("duty")


@pytest.fixture
def set_contacts(app):
    """set_contacts(household, created=, special=, visit=, contact=, method=) writes the
    contact columns directly (naive UTC); ``contact`` defaults to ``visit``."""
    _unset = object()

    def set_(household, *, created=_unset, special=_unset, visit=None, contact=_unset,
             method=None):
        if created is not _unset:
            household.created_at = created
        if special is not _unset:
            household.special_since = special
        household.last_visit_at = visit
        household.last_contact_at = visit if contact is _unset else contact
        if household.last_contact_at is not None:
            household.last_contact_method = method or ("visit" if contact is _unset else "phone")
        else:
            household.last_contact_method = None
        db.session.commit()
        return household

    return set_


class _Inputs(HTMLParser):
    """Collects the controls of the first <form> in a page, skipping the header's logout
    form."""

    def __init__(self):
        super().__init__()
        self.fields: dict[str, list] = {}
        self.checked: dict[str, str] = {}
        self.textareas: dict[str, str] = {}
        self._textarea = None
        self._select = None
        self.options: dict[str, list] = {}
        self.forms = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and not (a.get("action") or "").endswith("/logout"):
            self.forms += 1
        if self.forms != 1:
            return
        if tag == "input" and a.get("name"):
            self.fields.setdefault(a["name"], []).append(a)
            if a.get("type") in ("radio", "checkbox") and "checked" in a:
                self.checked[a["name"]] = a.get("value", "")
        elif tag == "textarea":
            self._textarea = a.get("name")
            self.textareas[self._textarea] = ""
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select:
            self.options.setdefault(self._select, []).append(a.get("value", ""))
            if "selected" in a or self._select not in self.checked:
                self.checked[self._select] = a.get("value", "")

    def handle_data(self, data):
        if self._textarea:
            if not self.textareas[self._textarea] and data.startswith("\r\n"):
                data = data[2:]  # browsers drop the newline right after <textarea>
            elif not self.textareas[self._textarea] and data.startswith("\n"):
                data = data[1:]
            self.textareas[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "form" and self.forms == 1:
            self.forms = 2  # done with the first form
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


def parse_form(html: str) -> SimpleNamespace:
    p = _Inputs()
    p.feed(html)

    def value(name):
        if name in p.checked:
            return p.checked[name]
        if name in p.textareas:
            return p.textareas[name]
        items = p.fields.get(name)
        if not items or items[0].get("type") in ("radio", "checkbox"):
            return None  # nothing chosen: the browser sends nothing
        return items[0].get("value", "")

    def options(name):
        if name in p.options:
            return p.options[name]
        return [a.get("value") for a in p.fields.get(name, [])]

    return SimpleNamespace(value=value, options=options,
                           names=set(p.fields) | set(p.textareas) | set(p.options))


@pytest.fixture
def form_parser():
    """form_parser(html) → .value(name) / .options(name) / .names of the page's first form."""
    return parse_form


@pytest.fixture
def log_form():
    """log_form(client, household, **headers) → (response, parsed form) of the duty-log form."""

    def get(client, household, headers=None):
        r = client.get(f"/duties/households/{household.id}/log", headers=headers or {})
        assert r.status_code == 200, r.status_code
        return r, parse_form(r.data.decode())

    return get


@pytest.fixture
def post_log(log_form):
    """post_log(client, household, headers=None, files=None, **overrides) → response.

    Opens the form, then posts its defaults (duty item, method, time, token, CSRF token) with
    ``overrides`` applied; an override of None drops the field."""

    def post(client, household, headers=None, form=None, **overrides):
        if form is None:
            _, form = log_form(client, household)
        data = {name: form.value(name) for name in
                ("csrf_token", "token", "duty_item_id", "method", "occurred_at", "note")}
        data["note"] = data["note"] or ""
        data.update(overrides)
        data = {k: v for k, v in data.items() if v is not None}
        return client.post(f"/duties/households/{household.id}/log", data=data,
                           headers=headers or {}, content_type="multipart/form-data")

    return post


@pytest.fixture
def duty_logs(app):
    """duty_logs(household=None) → the DutyLog rows (of one household), oldest first."""
    from portal.blueprints.duties.models import DutyLog

    def rows(household=None):
        db.session.expire_all()
        q = select(DutyLog).order_by(DutyLog.id)
        if household is not None:
            q = q.where(DutyLog.household_id == household.id)
        return list(db.session.scalars(q))

    return rows


@pytest.fixture
def audit_actions(app):
    """audit_actions(prefix) → list of (action, detail dict) written so far, oldest first."""
    from portal.audit import AuditEntry

    def actions(prefix=""):
        db.session.expire_all()
        return [(a.action, a.detail_dict) for a in db.session.scalars(
            select(AuditEntry).where(AuditEntry.action.startswith(prefix))
            .order_by(AuditEntry.id))]

    return actions


@pytest.fixture
def count_rows(app):
    def count(model):
        db.session.expire_all()
        return db.session.scalar(select(func.count()).select_from(model))

    return count
