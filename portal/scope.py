"""The one scoping helper: what a user may see and change.

A user's active posts each grant a role over a subtree of the region tree (the post's node and
everything below it, found by materialised-path prefix). Every view asks this module, never
filters by hand:

* ``current_scope()``: the request's :class:`Scope`.
* ``Scope.region_clause(column)``: a SQL condition limiting a path column to the visible subtrees.
* ``get_*_or_404(id, action)``: load one object; 404 when it is outside the user's subtrees (so its
  existence does not leak), 403 when it is visible but the user's role may not do ``action``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, g
from flask_login import current_user
from sqlalchemy import and_, false, or_, select

from portal.extensions import db

ROLES = ("neighbor_chief", "group_chief", "area_chief", "village_staff", "town_staff",
         "volunteer", "admin")
#: Roles that may read the region tree, households and duty logs of their subtree.
VIEW_ROLES = frozenset(
    {"neighbor_chief", "group_chief", "area_chief", "village_staff", "town_staff", "admin"}
)
#: Roles that may log a duty for a household in their subtree.
LOG_ROLES = VIEW_ROLES
#: Roles that manage the tree, households, posts and accounts of their subtree.
MANAGE_ROLES = frozenset({"village_staff", "town_staff", "admin"})
#: Roles that edit town-wide settings (三张清单, contact rules, tags).
TOWN_ROLES = frozenset({"town_staff", "admin"})
#: Roles that supervise 邻长 (grade them, record 六不得 breaches, see their points).
SUPERVISE_ROLES = VIEW_ROLES - {"neighbor_chief"}
#: Roles that see residents' phone numbers unmasked (besides the household's own 邻长).
PHONE_ROLES = MANAGE_ROLES

ACTIONS = {
    "any": frozenset(ROLES),
    "view": VIEW_ROLES,
    "log": LOG_ROLES,
    "manage": MANAGE_ROLES,
    "supervise": SUPERVISE_ROLES,
    "town": TOWN_ROLES,
}


def town_id_of(path: str) -> int:
    """The town id at the head of a materialised path."""
    return int(path.strip("/").split("/")[0])


def path_range(column, prefix: str):
    """``column`` lies in the subtree whose path is ``prefix`` ("/1/7/"), as an index range."""
    return and_(column >= prefix, column < prefix[:-1] + "0")


@dataclass(frozen=True)
class Grant:
    role: str
    #: Path of the post's node; "/" for a deployment-wide admin.
    path: str
    region_id: int | None


class Scope:
    def __init__(self, grants: list[Grant]):
        self.grants = grants

    @classmethod
    def for_user(cls, user) -> Scope:
        if not getattr(user, "is_authenticated", False):
            return cls([])
        grants = [
            Grant(p.role, p.region.path if p.region_id else "/", p.region_id)
            for p in user.posts
            if p.ended_at is None
        ]
        return cls(grants)

    # -- questions about one path -----------------------------------------------------------
    def roles_at(self, path: str) -> set[str]:
        return {gr.role for gr in self.grants if path.startswith(gr.path)}

    def allows(self, action: str, path: str) -> bool:
        return bool(self.roles_at(path) & ACTIONS[action])

    def can_view(self, path: str) -> bool:
        return self.allows("view", path)

    def sees_phone(self, neighborhood_path: str) -> bool:
        """Own 邻长 (post on exactly this 邻) or staff over it."""
        for gr in self.grants:
            if not neighborhood_path.startswith(gr.path):
                continue
            if gr.role in PHONE_ROLES or (gr.role == "neighbor_chief" and gr.path == neighborhood_path):
                return True
        return False

    # -- what the user holds ----------------------------------------------------------------
    def has_role(self, *roles: str) -> bool:
        return any(gr.role in roles for gr in self.grants)

    @property
    def is_neighbor_chief(self) -> bool:
        return self.has_role("neighbor_chief")

    @property
    def can_manage_any(self) -> bool:
        return self.has_role(*MANAGE_ROLES)

    @property
    def can_edit_town_settings(self) -> bool:
        return self.has_role(*TOWN_ROLES)

    @property
    def view_grants(self) -> list[Grant]:
        return [gr for gr in self.grants if gr.role in VIEW_ROLES]

    def top_paths(self, action: str = "view") -> list[str]:
        """Paths of the highest nodes the user may act on (no path inside another)."""
        paths = sorted({gr.path for gr in self.grants if gr.role in ACTIONS[action]})
        tops: list[str] = []
        for p in paths:
            if not any(p.startswith(t) for t in tops):
                tops.append(p)
        return tops

    def neighborhood_ids(self) -> list[int]:
        """The 邻 the user is 邻长 of."""
        return [gr.region_id for gr in self.grants if gr.role == "neighbor_chief"]

    # -- SQL --------------------------------------------------------------------------------
    def region_clause(self, path_column, action: str = "view"):
        tops = self.top_paths(action)
        if not tops:
            return false()
        return or_(*(path_range(path_column, p) for p in tops))

    def regions(self, action: str = "view"):
        from portal.blueprints.regions.models import Region

        return select(Region).where(self.region_clause(Region.path, action))

    def households(self, action: str = "view"):
        """Households whose 邻 is inside the visible subtrees (joined to that 邻 as Region)."""
        from portal.blueprints.regions.models import Household, Region

        return (
            select(Household)
            .join(Region, Household.neighborhood_id == Region.id)
            .where(self.region_clause(Region.path, action))
        )

    def town_ids(self, action: str = "view") -> set[int] | None:
        """Towns the user reaches; None means every town (deployment-wide admin)."""
        ids = set()
        for gr in self.grants:
            if gr.role in ACTIONS[action]:
                if gr.path == "/":
                    return None
                ids.add(town_id_of(gr.path))
        return ids


def current_scope() -> Scope:
    if "scope" not in g:
        g.scope = Scope.for_user(current_user)
    return g.scope


def check_path(path: str, action: str) -> None:
    """404 when ``path`` is outside what the user may see or do; 403 when they see it but their
    role may not do ``action`` there."""
    scope = current_scope()
    if not scope.can_view(path) and not scope.allows(action, path):
        abort(404)
    if not scope.allows(action, path):
        abort(403)


def get_region_or_404(region_id: int, action: str = "view"):
    from portal.blueprints.regions.models import Region

    region = db.session.get(Region, region_id)
    if region is None:
        abort(404)
    check_path(region.path, action)
    return region


def get_household_or_404(household_id: int, action: str = "view"):
    """The household with its 邻 loaded (one query); checks the 邻's path."""
    from sqlalchemy.orm import contains_eager, selectinload

    from portal.blueprints.regions.models import Household, Region

    household = db.session.execute(
        select(Household)
        .join(Region, Household.neighborhood_id == Region.id)
        .options(contains_eager(Household.neighborhood), selectinload(Household.tags))
        .where(Household.id == household_id)
    ).unique().scalar_one_or_none()
    if household is None:
        abort(404)
    check_path(household.neighborhood.path, action)
    return household


def get_post_or_404(post_id: int, action: str = "manage"):
    from sqlalchemy.orm import joinedload

    from portal.blueprints.regions.models import Post

    post = db.session.execute(
        select(Post)
        .options(joinedload(Post.region), joinedload(Post.user))
        .where(Post.id == post_id)
    ).scalar_one_or_none()
    if post is None:
        abort(404)
    check_path(post.region.path if post.region_id else "/", action)
    return post


def get_town_or_404(town_id: int | None, action: str = "view"):
    """A town whose settings (三张清单, rules, tags) to show or edit.

    Anyone holding a post in a town may read its settings; ``action`` other than "view" needs
    that role over the town node itself (403 otherwise). ``town_id`` None → the user's first town.
    """
    from portal.blueprints.regions.models import Region

    scope = current_scope()
    towns = scope.town_ids("any")
    if town_id is None:
        if towns is None:
            town_id = db.session.scalar(
                select(Region.id).where(Region.level == "town").order_by(Region.id))
        elif towns:
            town_id = min(towns)
    town = db.session.get(Region, town_id) if town_id is not None else None
    if town is None or town.level != "town" or (towns is not None and town.id not in towns):
        abort(404)
    if action != "view" and not scope.allows(action, town.path):
        abort(403)
    return town


def get_user_or_404(user_id: int, action: str = "manage"):
    """A person and the path of their first active post, for account actions by staff.

    404 unless one of their active posts lies in the user's visible subtrees; 403 unless the
    user may do ``action`` over *every* active post (a village cadre cannot reset the password
    of a town cadre who also holds a post in the village).
    """
    from sqlalchemy.orm import joinedload

    from portal.blueprints.auth.models import User
    from portal.blueprints.regions.models import Post

    user = db.session.execute(
        select(User).options(joinedload(User.posts).joinedload(Post.region))
        .where(User.id == user_id)
    ).unique().scalar_one_or_none()
    paths = [p.region.path if p.region_id else "/" for p in (user.posts if user else [])
             if p.ended_at is None]
    scope = current_scope()
    if not paths or not any(scope.can_view(p) or scope.allows(action, p) for p in paths):
        abort(404)
    if not all(scope.allows(action, p) for p in paths):
        abort(403)
    return user, paths[0]


def visible_ancestors(region, action: str = "view") -> list:
    """The ancestors of ``region`` (top first) the user may ``action``, for breadcrumbs."""
    from portal.blueprints.regions.models import Region

    ids = region.ancestor_ids[:-1]
    if not ids:
        return []
    scope = current_scope()
    return [r for r in db.session.scalars(
        select(Region).where(Region.id.in_(ids)).order_by(Region.path))
        if scope.allows(action, r.path)]


def get_request_or_404(request_id: int):
    """A resident's request (民情诉求) with its household, 邻 and category loaded; 404 unless the
    user may read it (its household is in their subtrees, they took it, or it is on the 接单
    board of their subtree). What they may *do* with it is the services' question."""
    from portal.blueprints.requests import services as rsvc

    req = rsvc.load(request_id)
    if req is None or not rsvc.can_see(current_scope(), req, getattr(current_user, "id", None)):
        abort(404)
    return req


def get_meeting_or_404(meeting_id: int):
    """A 议事 meeting with venue, region and convener loaded; 404 unless it is in the user's
    subtrees or covers them (a 邻长 sees the meeting of their group or village). Whether they
    may chair it is the services' question (``agenda.services.can_chair``)."""
    from portal.blueprints.agenda import services as asvc

    meeting = asvc.load_meeting(meeting_id)
    if meeting is None or not asvc.can_see_meeting(current_scope(), meeting.path):
        abort(404)
    return meeting


def get_item_or_404(item_id: int):
    """An agenda item (议题) with its category, region, meeting and people loaded; 404 unless its
    region is in the user's subtrees or its meeting is visible to them."""
    from portal.blueprints.agenda import services as asvc

    item = asvc.load_item(item_id)
    scope = current_scope()
    if item is None or not (scope.can_view(item.path) or (
            item.meeting is not None and asvc.can_see_meeting(scope, item.meeting.path))):
        abort(404)
    return item
