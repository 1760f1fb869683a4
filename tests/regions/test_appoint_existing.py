"""Giving a post to someone who already has an account, by phone number."""

from sqlalchemy import func, select

from portal.blueprints.regions.models import Post
from portal.extensions import db
from tests.conftest import csrf_from


def _appoint(client, region, phone, role):
    url = f"/regions/{region.id}/posts/new"
    page = client.get(url)
    return client.post(url, data={"phone": phone, "role": role, "name": "", "password": "",
                                  "csrf_token": csrf_from(page)})


def _posts(user) -> int:
    return db.session.scalar(select(func.count()).select_from(Post).where(
        Post.user_id == user.id))


def test_someone_serving_elsewhere_is_not_revealed_or_appointed(world, login_as):
    c = login_as(world.village_staff)
    r = _appoint(c, world.hood1b, world.neighbor_chief2.phone, "neighbor_chief")
    assert r.status_code == 422
    html = r.data.decode()
    assert "这个手机号已在其他单位任职" in html
    assert world.neighbor_chief2.name not in html
    assert _posts(world.neighbor_chief2) == 1


def test_an_admin_account_cannot_be_given_a_village_post(world, login_as):
    c = login_as(world.village_staff)
    assert _appoint(c, world.village1, world.admin.phone, "volunteer").status_code == 422
    assert _posts(world.admin) == 1


def test_someone_without_a_post_or_serving_here_can_be_appointed(world, login_as):
    c = login_as(world.village_staff)
    assert _appoint(c, world.hood1b, world.nobody.phone, "neighbor_chief").status_code == 303
    assert _appoint(c, world.hood1b, world.group_chief.phone, "neighbor_chief").status_code == 303
    assert _posts(world.nobody) == 1 and _posts(world.group_chief) == 2
