"""Staff reset the password of someone who forgot theirs (the login page sends them there)."""

import pytest
from sqlalchemy import func, select

from portal.audit import AuditEntry
from portal.blueprints.regions.models import Post
from portal.extensions import db
from tests.conftest import PASSWORD, csrf_from


def _reset(client, user, password, back=None):
    url = f"/users/{user.id}/password" + (f"?back={back}" if back else "")
    page = client.get(url)
    if page.status_code != 200:
        return page
    return client.post(url, data={"password": password, "csrf_token": csrf_from(page)})


def _can_log_in(app, user, password) -> bool:
    c = app.test_client()
    r = c.post("/login", data={"phone": user.phone, "password": password,
                               "csrf_token": csrf_from(c.get("/login"))})
    return r.status_code == 303


def test_village_staff_resets_a_group_chiefs_password(app, world, login_as):
    victim_session = login_as(world.group_chief)
    staff = login_as(world.village_staff)
    r = _reset(staff, world.group_chief, "new-pass-456", back="/regions/")
    assert r.status_code == 303 and r.headers["Location"] == "/regions/"
    assert _can_log_in(app, world.group_chief, "new-pass-456")
    assert not _can_log_in(app, world.group_chief, PASSWORD)
    # the old session of the person is over
    assert victim_session.get("/duties/dashboard").status_code == 302
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "user.reset_password"))
    assert entry.user_id == world.village_staff.id and entry.object_id == world.group_chief.id
    assert world.group_chief.phone not in entry.detail


@pytest.mark.parametrize(("actor", "target", "status"), [
    ("village_staff", "neighbor_chief2", 404),  # a 邻长 in another village
    ("village_staff", "town_staff", 404),       # above the village
    ("group_chief", "neighbor_chief", 403),     # visible but not the group chief's to manage
    ("neighbor_chief", "neighbor_chief", 403),  # oneself: use 修改密码 instead
    ("volunteer", "neighbor_chief", 404),
    ("town_staff", "admin", 404),               # a deployment-wide admin is above a town
])
def test_reset_refused_outside_what_the_actor_manages(app, world, login_as, actor, target,
                                                       status):
    c = login_as(getattr(world, actor))
    r = c.get(f"/users/{getattr(world, target).id}/password")
    assert r.status_code == status
    assert _can_log_in(app, getattr(world, target), PASSWORD)


def test_reset_refused_when_one_post_is_out_of_reach(app, world, login_as):
    """A person who is also a town cadre cannot be reset by a village cadre."""
    db.session.add(Post(user_id=world.group_chief.id, region_id=world.town.id,
                        role="town_staff"))
    db.session.commit()
    c = login_as(world.village_staff)
    assert c.get(f"/users/{world.group_chief.id}/password").status_code == 403


@pytest.mark.parametrize(("password", "message"), [
    ("short1", "密码至少 8 位。"),
    ("12345678901", "密码不能全是数字"),
    ("", "请填写新密码。"),
])
def test_reset_with_a_bad_password_saves_nothing(app, world, login_as, password, message):
    c = login_as(world.village_staff)
    r = _reset(c, world.group_chief, password)
    assert r.status_code == 422
    assert message in r.data.decode()
    assert _can_log_in(app, world.group_chief, PASSWORD)
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "user.reset_password")) == 0


def test_back_link_cannot_leave_the_site(world, login_as):
    c = login_as(world.village_staff)
    html = c.get(f"/users/{world.group_chief.id}/password?back=javascript:alert(1)").data.decode()
    assert "javascript:" not in html

