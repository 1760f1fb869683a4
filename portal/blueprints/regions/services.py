"""Rules for the region tree, households and posts. Views parse, call these, render."""

import secrets

from sqlalchemy import func, select

from portal.audit import record
from portal.blueprints.regions.models import (
    CHILD_LEVEL,
    ROLE_LABELS,
    ROLE_LEVEL,
    Household,
    HouseholdTag,
    Post,
    Region,
)
from portal.clock import utcnow
from portal.errors import ServiceError
from portal.extensions import db
from portal.phones import check_phone, mask_phone
from portal.scope import path_range

DEFAULT_TAGS = ("留守儿童", "孤寡老人", "独居老人", "残疾人", "低保户", "其他")


# -- tree --------------------------------------------------------------------------------------
def _check_unique_name(parent_id: int | None, name: str, own_id: int | None = None) -> None:
    q = select(func.count()).select_from(Region).where(
        Region.parent_id.is_(None) if parent_id is None else Region.parent_id == parent_id,
        Region.name == name)
    if own_id is not None:
        q = q.where(Region.id != own_id)
    if db.session.scalar(q):
        raise ServiceError("同一级下已有同名单位。", "name")


def create_region(actor, parent: Region | None, name: str, level: str | None = None) -> Region:
    name = name.strip()
    if parent is None:
        level = "town"
    else:
        level = CHILD_LEVEL.get(parent.level)
        if level is None:
            raise ServiceError("邻是最末一级，不能再往下分。")
    _check_unique_name(parent.id if parent else None, name)
    region = Region(parent_id=parent.id if parent else None, level=level, name=name, path="")
    db.session.add(region)
    db.session.flush()
    region.path = (parent.path if parent else "/") + f"{region.id}/"
    if level == "town":
        install_town_defaults(region)
    record(actor, "region.create", region, region.path, name=name, level=level)
    return region


def rename_region(actor, region: Region, name: str) -> None:
    name = name.strip()
    if name == region.name:
        return
    _check_unique_name(region.parent_id, name, region.id)
    record(actor, "region.rename", region, region.path, old=region.name, new=name)
    region.name = name


def install_town_defaults(town: Region) -> None:
    """Editable defaults every new town starts with: special tags, 三张清单, contact rules."""
    from portal.blueprints.duties.services import install_duty_defaults

    for i, name in enumerate(DEFAULT_TAGS):
        db.session.add(HouseholdTag(town_id=town.id, name=name, sort=i))
    install_duty_defaults(town)
    from portal.blueprints.requests.services import install_request_defaults

    install_request_defaults(town)
    from portal.blueprints.points.services import install_points_defaults

    install_points_defaults(town)


# -- households --------------------------------------------------------------------------------
def town_tags(town_id: int, active_only: bool = True) -> list[HouseholdTag]:
    q = select(HouseholdTag).where(HouseholdTag.town_id == town_id)
    if active_only:
        q = q.where(HouseholdTag.active)
    return list(db.session.scalars(q.order_by(HouseholdTag.sort, HouseholdTag.id)))


def _apply_tags(household: Household, town_id: int, tag_ids: list[int], now) -> None:
    tags = []
    if tag_ids:
        tags = list(db.session.scalars(
            select(HouseholdTag).where(HouseholdTag.id.in_(tag_ids),
                                       HouseholdTag.town_id == town_id)))
        if len(tags) != len(set(tag_ids)):
            raise ServiceError("所选标签无效。", "tags")
    was_special = household.special_since is not None
    household.tags = tags
    if tags and not was_special:
        household.special_since = now
    elif not tags:
        household.special_since = None


def _household_fields(data: dict) -> dict:
    phone = (data.get("phone") or "").strip()
    return {
        "address": data["address"].strip(),
        "head_name": data["head_name"].strip(),
        "phone": check_phone(phone) if phone else None,
        "member_count": int(data["member_count"]),
    }


def new_intake_token() -> str:
    """The secret in a household's request link (22 URL-safe characters, 128 bits)."""
    return secrets.token_urlsafe(16)


def create_household(actor, neighborhood: Region, data: dict, tag_ids: list[int]) -> Household:
    if neighborhood.level != "neighborhood":
        raise ServiceError("户只能登记在“邻”下面。")
    now = utcnow()
    household = Household(neighborhood_id=neighborhood.id, intake_token=new_intake_token(),
                          **_household_fields(data))
    household.tags = []
    household.created_at = now
    db.session.add(household)
    _apply_tags(household, neighborhood.town_id, tag_ids, now)
    record(actor, "household.create", household, neighborhood.path,
           address=household.address, head=household.head_name,
           phone=mask_phone(household.phone), tags=[t.name for t in household.tags])
    return household


def update_household(actor, household: Household, data: dict, tag_ids: list[int]) -> None:
    fields = _household_fields(data)
    changes = {}
    for key, value in fields.items():
        old = getattr(household, key)
        if old != value:
            changes[key] = [mask_phone(old), mask_phone(value)] if key == "phone" else [old, value]
            setattr(household, key, value)
    old_tags = [t.name for t in household.tags]
    _apply_tags(household, household.neighborhood.town_id, tag_ids, utcnow())
    new_tags = [t.name for t in household.tags]
    if old_tags != new_tags:
        changes["tags"] = [old_tags, new_tags]
    if changes:
        record(actor, "household.update", household, household.neighborhood.path, **changes)


def move_household(actor, household: Household, target: Region) -> None:
    if target.level != "neighborhood":
        raise ServiceError("只能移到一个“邻”。", "neighborhood_id")
    if target.id == household.neighborhood_id:
        raise ServiceError("该户已在这个邻。", "neighborhood_id")
    if target.town_id != household.neighborhood.town_id:
        raise ServiceError("不能移到其他镇(街道)。", "neighborhood_id")
    old = household.neighborhood
    household.neighborhood_id = target.id
    household.neighborhood = target
    detail = {"from": old.name, "to": target.name, "head": household.head_name}
    record(actor, "household.move", household, target.path, **detail)
    # the old 邻's cadres see the household leave, too
    record(actor, "household.move_out", household, old.path, **detail)


# -- posts -------------------------------------------------------------------------------------
def check_role_level(role: str, region: Region) -> None:
    level = ROLE_LEVEL.get(role)
    if level and region.level != level:
        raise ServiceError(f"{ROLE_LABELS[role]}只能设在“{_level_label(level)}”一级。", "role")


def _level_label(level: str) -> str:
    from portal.blueprints.regions.models import LEVEL_LABELS

    return LEVEL_LABELS[level]


def check_can_appoint(scope, user) -> None:
    """An existing account may get a post from staff who can see one of its current posts, or
    if it holds none (so a number typed in does not reveal people elsewhere)."""
    paths = [p for (p,) in db.session.execute(
        select(Region.path).join(Post, Post.region_id == Region.id)
        .where(Post.user_id == user.id, Post.ended_at.is_(None)))]
    has_global = db.session.scalar(select(func.count()).select_from(Post).where(
        Post.user_id == user.id, Post.ended_at.is_(None), Post.region_id.is_(None)))
    if has_global or (paths and not any(scope.can_view(p) for p in paths)):
        raise ServiceError("这个手机号已在其他单位任职，请联系镇(街道)干部办理。", "phone")


def create_post(actor, region: Region, role: str, user) -> Post:
    check_role_level(role, region)
    dup = db.session.scalar(
        select(func.count()).select_from(Post).where(
            Post.user_id == user.id, Post.region_id == region.id, Post.role == role,
            Post.ended_at.is_(None)))
    if dup:
        raise ServiceError("此人已在这里担任该岗位。", "phone")
    post = Post(user_id=user.id, region_id=region.id, role=role, started_at=utcnow())
    db.session.add(post)
    # detail keys must not clash with record()'s own parameters (user, action, obj …)
    record(actor, "post.create", post, region.path, holder=user.name,
           phone=mask_phone(user.phone), role=role)
    return post


def end_post(actor, post: Post) -> None:
    if post.ended_at is not None:
        raise ServiceError("该岗位已结束。")
    post.ended_at = utcnow()
    record(actor, "post.end", post, post.region.path if post.region_id else "/",
           holder=post.user.name, phone=mask_phone(post.user.phone), role=post.role)


def path_names(paths) -> dict[int, str]:
    """Names of every region on the given paths, in one query."""
    ids = {int(p) for path in paths for p in path.strip("/").split("/") if p}
    if not ids:
        return {}
    return dict(db.session.execute(select(Region.id, Region.name).where(Region.id.in_(ids))).all())


def node_name(path: str, names: dict[int, str], depth: int) -> str:
    """Name of the node at ``depth`` of a path (0 镇, 1 村, 2 片, 3 组, 4 邻)."""
    parts = path.strip("/").split("/")
    return names.get(int(parts[depth]), "") if len(parts) > depth else ""


def where_of(paths) -> dict[str, str]:
    """Path → "村 · 片 · 组 · 邻" (the town left out), one query for every path given."""
    paths = list(paths)
    names = path_names(paths)
    return {p: " · ".join(n for n in (names.get(int(i), "") for i in p.strip("/").split("/")[1:]) if n)
            for p in paths}


def children_of(region: Region) -> list[Region]:
    return list(db.session.scalars(
        select(Region).where(Region.parent_id == region.id).order_by(Region.name)))


def subtree_neighborhoods(scope, town_id: int, action: str = "manage") -> list[Region]:
    """Every 邻 of a town the user may act on (for the move-household picker)."""
    return list(db.session.scalars(
        select(Region).where(
            Region.level == "neighborhood",
            scope.region_clause(Region.path, action),
            path_range(Region.path, f"/{town_id}/"),
        ).order_by(Region.path)))


# -- tags --------------------------------------------------------------------------------------
def add_tag(actor, town: Region, name: str) -> HouseholdTag:
    name = name.strip()
    if db.session.scalar(select(func.count()).select_from(HouseholdTag).where(
            HouseholdTag.town_id == town.id, HouseholdTag.name == name)):
        raise ServiceError("已有这个标签。", "name")
    sort = db.session.scalar(select(func.coalesce(func.max(HouseholdTag.sort), -1) + 1)
                             .where(HouseholdTag.town_id == town.id))
    tag = HouseholdTag(town_id=town.id, name=name, sort=sort)
    db.session.add(tag)
    record(actor, "tag.create", tag, town.path, name=name)
    return tag


def toggle_tag(actor, town: Region, tag: HouseholdTag) -> None:
    """Retired tags stay on households that have them but are no longer offered."""
    tag.active = not tag.active
    record(actor, "tag.toggle", tag, town.path, name=tag.name, active=tag.active)
