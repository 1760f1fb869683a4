"""Rules for 民情诉求: intake (点单), deadlines and escalation 邻 → 组 → 村 → 镇, 接单, answers,
ratings and reopening, mediations, and the lists and figures built on them.

Every function that changes a request takes ``now`` (tests pass a controlled clock) and first
records the escalations that happened since the request was last written (:func:`sync`). The
change is saved with the request's version check, so two changes made from the same state
cannot both succeed (:func:`save`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import and_, case, false, func, or_, select
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.exc import StaleDataError

from portal.audit import record
from portal.blueprints.points import services as points
from portal.blueprints.regions.models import Household, Post, Region
from portal.blueprints.requests.models import (
    DEFAULT_CATEGORIES,
    DEFAULT_DEPARTMENTS,
    DEFAULT_HOURS,
    DEFAULT_REOPEN_DAYS,
    LEVEL_NAMES,
    RATINGS,
    TOP,
    Department,
    Mediation,
    Request,
    RequestCategory,
    RequestEvent,
    RequestSettings,
)
from portal.clock import local_today, utcnow
from portal.errors import ServiceError, clean_text
from portal.extensions import db
from portal.once import EXPIRED, earlier, flush_once
from portal.phones import check_phone, mask_phone
from portal.photos import new_photo_name, store_photo
from portal.scope import path_range

#: The roles that answer at each level, over that level's node ("片组汇总": the 片长 helps at 组).
HANDLER_ROLES = ({"neighbor_chief"}, {"group_chief", "area_chief"}, {"village_staff"},
                 {"town_staff"})
#: Staff may also step in below their own level, inside their subtree.
STAFF_LEVEL = {"village_staff": 2, "town_staff": 3, "admin": 3}
#: The level whose queue each role works.
QUEUE_LEVEL = {"neighbor_chief": 0, "group_chief": 1, "area_chief": 1, "village_staff": 2,
               "town_staff": 3, "admin": 3}
#: Who may take (接单) a request offered to helpers: volunteers / party members and 三长 —
#: and staff, who are usually party members too.
HELPER_ROLES = frozenset({"volunteer", "neighbor_chief", "group_chief", "area_chief",
                          "village_staff", "town_staff", "admin"})
#: Index of each level's node in a 邻's path /town/village/area/group/邻/ (片 is skipped).
PATH_INDEX = (4, 3, 1, 0)
DESCRIPTION_MAX = 1000
ANSWER_MIN = 4
STALE = "这条诉求刚被别人更新过，页面上的内容已过时。请刷新后再试。"
CLAIMED = "刚刚已经有人接了这一单。"


# -- town settings -------------------------------------------------------------------------------
def install_request_defaults(town: Region) -> None:
    db.session.add(RequestSettings(town_id=town.id))
    for i, (name, dispute) in enumerate(DEFAULT_CATEGORIES):
        db.session.add(RequestCategory(town_id=town.id, name=name, is_dispute=dispute, sort=i))
    for i, name in enumerate(DEFAULT_DEPARTMENTS):
        db.session.add(Department(town_id=town.id, name=name, sort=i))


def town_settings(town_id: int) -> RequestSettings:
    """The town's settings (the defaults, unsaved, for a town created before they existed)."""
    row = db.session.get(RequestSettings, town_id)
    if row is None:
        h = DEFAULT_HOURS
        row = RequestSettings(town_id=town_id, hours_neighborhood=h[0], hours_group=h[1],
                              hours_village=h[2], hours_town=h[3], reopen_days=DEFAULT_REOPEN_DAYS)
    return row


def save_settings(actor, town: Region, hours: list[int], reopen_days: int) -> RequestSettings:
    if len(hours) != 4 or any(not 1 <= h <= 720 for h in hours):
        raise ServiceError("各级响应时限须在 1 到 720 小时之间。")
    if not 0 <= reopen_days <= 90:
        raise ServiceError("重新打开期限须在 0 到 90 天之间。", "reopen_days")
    row = db.session.get(RequestSettings, town.id)
    if row is None:
        row = town_settings(town.id)
        db.session.add(row)
    before = {"hours": list(row.hours), "reopen_days": row.reopen_days}
    (row.hours_neighborhood, row.hours_group, row.hours_village, row.hours_town) = hours
    row.reopen_days = reopen_days
    after = {"hours": list(row.hours), "reopen_days": row.reopen_days}
    changes = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    if changes:
        record(actor, "request_settings.update", row, town.path, **changes)
    return row


def options(model, town_id: int, active_only: bool = True) -> list:
    """A town's categories or departments (``model`` RequestCategory or Department)."""
    q = select(model).where(model.town_id == town_id)
    if active_only:
        q = q.where(model.active)
    return list(db.session.scalars(q.order_by(model.sort, model.id)))


def save_option(actor, town: Region, model, item, name: str, active: bool = True,
                is_dispute: bool = False):
    """Add (item None) or change one category or department of a town."""
    name = name.strip()
    kind = "category" if model is RequestCategory else "department"
    limit = 20 if model is RequestCategory else 40
    if not name:
        raise ServiceError("请填写名称。", "name")
    if len(name) > limit:
        raise ServiceError(f"名称最多 {limit} 字。", "name")
    clash = db.session.scalar(select(model.id).where(
        model.town_id == town.id, model.name == name,
        model.id != (item.id if item is not None else -1)))
    if clash is not None:
        raise ServiceError(f"已有“{name}”。", "name")
    if item is None:
        sort = db.session.scalar(select(func.coalesce(func.max(model.sort), -1) + 1)
                                 .where(model.town_id == town.id))
        item = model(town_id=town.id, name=name, sort=sort, active=True)
        if model is RequestCategory:
            item.is_dispute = is_dispute
        db.session.add(item)
        record(actor, f"{kind}.create", item, town.path, name=name)
        return item
    if (model is RequestCategory and item.active and not active
            and len(options(RequestCategory, town.id)) <= 1):
        raise ServiceError("至少要保留一个启用的诉求类别。", "active")
    values = {"name": name, "active": active}
    if model is RequestCategory:
        values["is_dispute"] = is_dispute
    changes = {k: [getattr(item, k), v] for k, v in values.items() if getattr(item, k) != v}
    for k, v in values.items():
        setattr(item, k, v)
    if changes:
        record(actor, f"{kind}.update", item, town.path, **changes)
    return item


# -- levels and deadlines ------------------------------------------------------------------------
def node_id(path: str, level: int) -> int:
    """The id of the request's node at ``level`` (its 邻, group, village or town)."""
    return int(path.strip("/").split("/")[PATH_INDEX[level]])


def node_path(path: str, level: int) -> str:
    parts = path.strip("/").split("/")
    return "/" + "/".join(parts[:PATH_INDEX[level] + 1]) + "/"


def chain_dues(level: int, at: datetime, hours, staffed=(True,) * (TOP + 1)) -> list[datetime]:
    """Deadlines for a request entering ``level`` at ``at`` (see models' docstring). A level
    above with nobody in post (``staffed[k]`` false) gets no time: the request passes it."""
    dues, t = [], at
    for k in range(TOP + 1):
        if k == level or (k > level and staffed[k]):
            t = t + timedelta(hours=hours[k])
        dues.append(t if k >= level else at)
    return dues


def handler_nodes(path: str, level: int) -> list[int]:
    """The regions whose posts (of ``HANDLER_ROLES[level]``) answer at ``level``: the level's
    node, and at 组 also its 片 ("片组汇总": the 片长 answers with the 组长)."""
    nodes = [node_id(path, level)]
    if level == 1:
        nodes.append(int(path.strip("/").split("/")[2]))
    return nodes


def staffed_levels(neighborhood_path: str) -> list[bool]:
    """Which levels of this 邻's chain have someone in post to answer (one query). 镇 counts as
    staffed regardless: it is where every request ends up."""
    nodes = {k: handler_nodes(neighborhood_path, k) for k in range(TOP)}
    held = set(db.session.execute(
        select(Post.region_id, Post.role).where(
            Post.region_id.in_([n for ns in nodes.values() for n in ns]),
            Post.ended_at.is_(None))).all())
    return [*(any((n, role) in held for n in nodes[k] for role in HANDLER_ROLES[k])
              for k in range(TOP)), True]


def _set_dues(req: Request, level: int, at: datetime, staffed: list[bool] | None = None) -> int:
    """Put the request at ``level`` — or the first level above it with someone in post — with
    fresh deadlines from ``at``; returns the level. ``staffed``: :func:`staffed_levels`, if the
    caller has it already."""
    staffed = staffed or staffed_levels(req.path)
    level = next(k for k in range(level, TOP + 1) if staffed[k])
    req.level = level
    req.due_0, req.due_1, req.due_2, req.due_3 = chain_dues(
        level, at, town_settings(req.town_id).hours, staffed)
    return level


def _skipped(dues, level: int, k: int) -> bool:
    """Level ``k`` above ``level`` got no time in the chain (nobody in post there)."""
    return k > level and dues[k] == dues[k - 1]


@dataclass(frozen=True)
class Effective:
    level: int
    #: The response deadline at that level, while the request waits for a response.
    deadline: datetime | None
    #: Waiting at 镇 past the last deadline (nowhere left to escalate).
    overdue: bool
    #: Levels whose deadline passed without a response.
    missed: frozenset[int] = field(default_factory=frozenset)

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES[self.level]

    def time_left(self, now: datetime) -> timedelta | None:
        return None if self.deadline is None else self.deadline - now


def effective(req: Request, now: datetime) -> Effective:
    """Where the request is at ``now``, counting escalations not yet recorded."""
    recorded = {k for k in range(TOP + 1) if req.missed & (1 << k)}
    if req.status != "new":
        return Effective(req.level, None, False, frozenset(recorded))
    dues = req.dues
    level = next((k for k in range(req.level, TOP + 1) if now < dues[k]), TOP)
    passed = {k for k in range(req.level, TOP + 1)
              if dues[k] <= now and not _skipped(dues, req.level, k)}
    return Effective(level, dues[level], dues[TOP] <= now, frozenset(recorded | passed))


def effective_level_sql(now: datetime):
    """SQL mirror of ``effective(req, now).level``."""
    return case(
        (Request.status != "new", Request.level),
        (Request.due_0 > now, 0), (Request.due_1 > now, 1), (Request.due_2 > now, 2),
        else_=TOP)


def effective_deadline_sql(now: datetime):
    """SQL mirror of ``effective(req, now).deadline`` (NULL unless waiting for a response)."""
    return case(
        (Request.status != "new", None),
        (Request.due_0 > now, Request.due_0), (Request.due_1 > now, Request.due_1),
        (Request.due_2 > now, Request.due_2), else_=Request.due_3)


def missed_sql(level: int, now: datetime):
    """SQL: the deadline at ``level`` passed without a response (recorded or not yet)."""
    dues = (Request.due_0, Request.due_1, Request.due_2, Request.due_3)
    waiting = and_(Request.status == "new", Request.level <= level, dues[level] <= now)
    if level > 0:  # a level passed for want of anyone in post was not missed
        waiting = and_(waiting, dues[level] > dues[level - 1])
    return or_(Request.missed.op("&")(1 << level) != 0, waiting)


def sync(req: Request, now: datetime) -> list[RequestEvent]:
    """Record the escalations of ``req`` that happened by ``now`` (one "timeout" event per level
    passed, at the instant its deadline passed) and move it to its effective level."""
    eff = effective(req, now)
    events = []
    if req.status != "new":
        return events
    dues = req.dues
    for k in range(req.level, TOP + 1):
        if dues[k] > now or req.missed & (1 << k) or _skipped(dues, req.level, k):
            continue
        req.missed |= 1 << k
        hours = _hours_given(req, k)
        if k < TOP:
            to = next((j for j in range(k + 1, TOP) if not _skipped(dues, req.level, j)), TOP)
            note = f"{LEVEL_NAMES[k]}级 {hours} 小时内未响应，自动上报到{LEVEL_NAMES[to]}级" + (
                "（中间层级暂无人在岗）。" if to > k + 1 else "。")
            events.append(_event(req, None, "timeout", dues[k], from_level=k, to_level=to,
                                 note=note))
        else:
            events.append(_event(req, None, "timeout", dues[k], from_level=k, to_level=k,
                                 note=f"镇级 {hours} 小时内未响应，已逾期。"))
        record(None, "request.timeout", req, req.path, from_level=LEVEL_NAMES[k],
               to_level=LEVEL_NAMES[events[-1].to_level])
    if eff.level != req.level:
        req.level = eff.level
        req.handler_id = None
        req.department_id = None
    return events


def _hours_given(req: Request, k: int) -> int:
    """The response hours the request had at level ``k``: read from its chained deadlines (the
    town's settings may have changed since); the settings only for 邻 after a reopen."""
    if k > 0:
        start = req.dues[k - 1]  # the previous deadline, or the instant it entered level k
    elif req.reopen_count == 0:
        start = req.created_at
    else:
        return town_settings(req.town_id).hours[0]
    return round((req.dues[k] - start).total_seconds() / 3600)


def tick(now: datetime | None = None, batch: int = 500) -> int:
    """Record every escalation that has happened (for cron: ``flask requests tick``).

    Returns the number of timeout events written. Safe to run while people work: a request
    changed meanwhile is skipped (its next change records its escalations anyway), the others
    of its batch are still recorded."""
    now = now or utcnow()
    pending = or_(*(and_(Request.level == k, due <= now) for k, due in enumerate(
        (Request.due_0, Request.due_1, Request.due_2))),
        and_(Request.level == TOP, Request.due_3 <= now, Request.missed.op("&")(8) == 0))
    written = 0
    last_id = 0
    while True:
        ids = list(db.session.scalars(
            select(Request.id).where(Request.status == "new", pending, Request.id > last_id)
            .order_by(Request.id).limit(batch)))
        if not ids:
            break
        last_id = ids[-1]
        # The version check can fail in sync() itself (its audit rows flush the session), not
        # only in the commit: either way the batch is rolled back and redone one by one.
        try:
            batch_events = 0
            for req in db.session.scalars(select(Request).where(Request.id.in_(ids))):
                batch_events += len(sync(req, now))
            db.session.commit()
        except StaleDataError:
            db.session.rollback()
            batch_events = sum(_tick_one(request_id, now) for request_id in ids)
        written += batch_events
    return written


def _tick_one(request_id: int, now: datetime) -> int:
    """tick() for one request, in its own transaction; 0 if someone changed it meanwhile."""
    try:
        req = db.session.get(Request, request_id)
        n = len(sync(req, now)) if req is not None else 0
        db.session.commit()
    except StaleDataError:
        db.session.rollback()
        return 0
    return n


# -- who may do what -----------------------------------------------------------------------------
def can_handle(scope, req: Request, level: int) -> bool:
    """Answer, escalate or route the request at ``level``: a handler of that level over its
    node, or staff of that level or above over it."""
    target = node_path(req.path, level)
    for gr in scope.grants:
        if not target.startswith(gr.path):
            continue
        if gr.role in HANDLER_ROLES[level]:
            return True
        if gr.role in STAFF_LEVEL and STAFF_LEVEL[gr.role] >= level:
            return True
    return False


def can_help(scope, req: Request) -> bool:
    return any(gr.role in HELPER_ROLES and req.path.startswith(gr.path) for gr in scope.grants)


def can_see(scope, req: Request, user_id: int | None) -> bool:
    """Read the request: anyone who may view its household; its helper; and, while it is on
    the board, anyone who may take it."""
    if scope.can_view(req.path) or (user_id is not None and req.helper_id == user_id):
        return True
    return req.open_to_helpers and req.helper_id is None and req.status != "closed" \
        and can_help(scope, req)


def sees_contact(scope, req: Request, user_id: int | None = None,
                 now: datetime | None = None) -> bool:
    """The resident's phone, unmasked: the household's 邻长 and staff (the rule for the
    household's phone), whoever answers the request at its current level, and its helper."""
    if scope.sees_phone(req.path) or (user_id is not None and req.helper_id == user_id):
        return True
    return req.status != "closed" and can_handle(scope, req, effective(req, now or utcnow()).level)


def visible_clause(scope, user_id: int | None):
    """SQL: requests ``scope`` may read (for lists; :func:`can_see` for one — the same rule)."""
    tops = scope.top_paths("view")
    alts = [path_range(Request.path, p) for p in tops]
    if user_id is not None:
        alts.append(Request.helper_id == user_id)
    helps = sorted({gr.path for gr in scope.grants if gr.role in HELPER_ROLES})
    if helps:  # on the board of a subtree where the user may take requests
        alts.append(and_(Request.open_to_helpers, Request.helper_id.is_(None),
                         Request.status != "closed",
                         or_(*(path_range(Request.path, p) for p in helps))))
    return or_(*alts) if alts else false()


# -- changes -------------------------------------------------------------------------------------
def _event(req: Request, actor, kind: str, at: datetime, *, from_status=None, to_status=None,
           from_level=None, to_level=None, note: str = "") -> RequestEvent:
    ev = RequestEvent(request_id=req.id, at=at, user_id=getattr(actor, "id", None), kind=kind,
                      from_status=from_status, to_status=to_status, from_level=from_level,
                      to_level=to_level, note=note)
    db.session.add(ev)
    return ev


def _change(req: Request, actor, kind: str, now: datetime, *, status: str | None = None,
            level: int | None = None, note: str = "", **audit) -> RequestEvent:
    """Append the event for one change (status and level before → after) and its audit row."""
    ev = _event(req, actor, kind, now, from_status=req.status, to_status=status or req.status,
                from_level=req.level, to_level=req.level if level is None else level, note=note)
    if status:
        req.status = status
    if level is not None:
        req.level = level
    record(actor, f"request.{kind}", req, req.path, **audit)
    return ev


def save(req: Request) -> None:
    """Flush with the version check: refuse if someone changed the request meanwhile."""
    try:
        db.session.flush()
    except StaleDataError as e:
        raise ServiceError(STALE) from e


def refuses_stale(message: str = STALE):
    """Decorator for a change: the version check may fail at any flush *before* :func:`save` —
    the audit rows of :func:`sync` and :func:`_change` flush the session, and so does a query's
    autoflush — and is then the same refusal (a ServiceError, never a 500)."""
    def wrap(change):
        @functools.wraps(change)
        def guarded(*args, **kwargs):
            try:
                return change(*args, **kwargs)
            except StaleDataError as e:
                raise ServiceError(message) from e
        return guarded
    return wrap


def submit(household: Household, data: dict, *, source: str, actor=None, photo: bytes | None,
           token: str, now: datetime | None = None) -> tuple[Request, bool]:
    """点单: a resident (actor None, through the household link) or a 三长 for them.

    ``data``: category_id, description, contact_name, contact_phone, contact_note.
    Returns (request, created); a form token seen before returns the earlier request."""
    now = now or utcnow()
    if not token or len(token) > 36:
        raise ServiceError(EXPIRED)
    existing = earlier(Request, token, household.id)
    if existing is not None:
        return existing, False
    region = household.neighborhood
    category = db.session.get(RequestCategory, data.get("category_id") or 0)
    if category is None or not category.active or category.town_id != region.town_id:
        raise ServiceError("请选择诉求类别。", "category_id")
    description = clean_text(data.get("description"), "诉求内容", DESCRIPTION_MAX, 4, "description")
    phone = (data.get("contact_phone") or "").strip()
    phone = check_phone(phone, "contact_phone") if phone else None
    req = Request(
        town_id=region.town_id, household_id=household.id, neighborhood_id=region.id,
        path=region.path, category_id=category.id, description=description,
        contact_name=clean_text(data.get("contact_name"), "称呼", 40, 0, "contact_name"),
        contact_phone=phone,
        contact_note=clean_text(data.get("contact_note"), "联系说明", 100, 0, "contact_note"),
        source=source, created_by_id=getattr(actor, "id", None), form_token=token,
        status="new", missed=0, open_to_helpers=False, reopen_count=0, created_at=now,
        updated_at=now, photo=new_photo_name() if photo else None)
    _set_dues(req, 0, now)
    db.session.add(req)
    existing = flush_once(Request, token)
    if existing is not None:
        return existing, False
    note = "" if req.level == 0 else f"该邻暂无邻长，直接由{LEVEL_NAMES[req.level]}级响应。"
    _event(req, actor, "created", now, to_status="new", to_level=req.level, note=note)
    record(actor, "request.create", req, req.path, category=category.name, source=source,
           household=household.head_name, phone=mask_phone(phone))
    if photo:
        store_photo("requests", req.photo, photo)
    return req, True


def _start(actor, req: Request, now: datetime, *, scope=None, handler: bool = True) -> int:
    """Record pending escalations; check the actor may act at the request's level."""
    sync(req, now)
    if req.status == "closed":
        raise ServiceError("这条诉求已经办结。")
    if handler and scope is not None and not can_handle(scope, req, req.level):
        raise ServiceError(f"这条诉求现在由{LEVEL_NAMES[req.level]}级办理，您现在不能处理它。")
    return req.level


@refuses_stale()
def acknowledge(actor, scope, req: Request, now: datetime, note: str = "") -> None:
    """响应: the handler answers the resident that they are on it; stops the clock."""
    _start(actor, req, now, scope=scope)
    if req.status != "new":
        raise ServiceError("这条诉求已经有人响应了。")
    note = clean_text(note, "说明", 500)
    req.handler_id = actor.id
    _change(req, actor, "acknowledged", now, status="working", note=note)
    save(req)
    points.on_request_response(actor, req, now)


@refuses_stale()
def escalate(actor, scope, req: Request, now: datetime, reason: str) -> None:
    """逐级上报 with a reason: to the next level, with that level's deadline from now."""
    level = _start(actor, req, now, scope=scope)
    if level >= TOP:
        raise ServiceError("已经在镇级，不能再上报。请办结并答复。")
    reason = clean_text(reason, "上报原因", 500, 4, "reason")
    staffed = staffed_levels(req.path)
    target = next(k for k in range(level + 1, TOP + 1) if staffed[k])  # skip a vacant level
    _change(req, actor, "escalated", now, status="new", level=target, note=reason,
            to=LEVEL_NAMES[target])
    _set_dues(req, target, now, staffed)
    req.handler_id = None
    req.department_id = None
    save(req)


@refuses_stale()
def route(actor, scope, req: Request, now: datetime, department_id: int, note: str = "") -> None:
    """转交 at 村 or 镇 to a department of the town; counts as the response."""
    level = _start(actor, req, now, scope=scope)
    if level < 2:
        raise ServiceError("到村级或镇级后才能转交部门。")
    dept = db.session.get(Department, department_id or 0)
    if dept is None or not dept.active or dept.town_id != req.town_id:
        raise ServiceError("请选择承办部门。", "department_id")
    note = clean_text(note, "说明", 500)
    req.department_id = dept.id
    first_response = req.status == "new"
    if first_response:
        req.handler_id = actor.id
    _change(req, actor, "routed", now, status="working", note=f"转交{dept.name}。{note}".strip(),
            department=dept.name)
    save(req)
    if first_response:
        points.on_request_response(actor, req, now)


@refuses_stale()
def offer_to_helpers(actor, scope, req: Request, now: datetime, note: str = "") -> None:
    """Put the request on the 接单 board; counts as the response."""
    _start(actor, req, now, scope=scope)
    if req.open_to_helpers:
        raise ServiceError("这条诉求已经在接单栏里了。")
    req.open_to_helpers = True
    first_response = req.status == "new"
    if first_response:
        req.handler_id = actor.id
    _change(req, actor, "helpers", now, status="working", note=clean_text(note, "说明", 500))
    save(req)
    if first_response:
        points.on_request_response(actor, req, now)


@refuses_stale(CLAIMED)
def claim(actor, scope, req: Request, now: datetime) -> None:
    """接单: the first helper to claim gets it; a second claim at the same moment is refused."""
    if req.status == "closed":
        raise ServiceError("这条诉求已经办结。")
    if not req.open_to_helpers:
        raise ServiceError("这条诉求没有发布接单。")
    if req.helper_id is not None:
        raise ServiceError("已经有人接单了。" if req.helper_id != actor.id else "您已经接了这一单。")
    if not can_help(scope, req):
        raise ServiceError("这条诉求不在您服务的范围内。")
    sync(req, now)
    req.helper_id, req.claimed_at, req.helper_done_at = actor.id, now, None
    _change(req, actor, "claimed", now, helper=actor.name)
    try:
        save(req)
    except ServiceError as e:
        raise ServiceError(CLAIMED) from e


def _helper_only(actor, req: Request, now: datetime) -> None:
    if req.helper_id != actor.id:
        raise ServiceError("只有接单人可以这样做。")
    _start(actor, req, now, handler=False)


@refuses_stale()
def helper_progress(actor, req: Request, now: datetime, note: str) -> None:
    _helper_only(actor, req, now)
    _change(req, actor, "progress", now, note=clean_text(note, "进展", 500, 2, "note"))
    save(req)


@refuses_stale()
def helper_done(actor, req: Request, now: datetime, note: str) -> None:
    """The helper reports it done; the handler then confirms by closing it with the answer."""
    _helper_only(actor, req, now)
    if req.helper_done_at is not None:
        raise ServiceError("已经报告办完了，等待负责人确认。")
    note = clean_text(note, "办理结果", 500, ANSWER_MIN, "note")
    req.helper_done_at = now
    _change(req, actor, "helper_done", now, note=note)
    save(req)


@refuses_stale()
def release(actor, req: Request, now: datetime, note: str = "") -> None:
    """The helper gives the request back to the board."""
    _helper_only(actor, req, now)
    req.helper_id, req.claimed_at, req.helper_done_at = None, None, None
    _change(req, actor, "released", now, note=clean_text(note, "原因", 500))
    save(req)


@refuses_stale()
def close(actor, scope, req: Request, now: datetime, answer: str) -> None:
    """办结: the handler closes the request with the answer the resident will read
    ("有事必有议，有议必有答"). Also how a helper's work is confirmed."""
    level = _start(actor, req, now, scope=scope)
    first_response = req.status == "new"
    answer = clean_text(answer, "答复", 1000, ANSWER_MIN, "answer")
    if req.helper_id is not None and req.helper_done_at is None:
        raise ServiceError("接单人还没有报告办完。请等接单人办完，或先请他退回接单。")
    req.answer, req.closed_at, req.closed_level, req.closed_by_id = answer, now, level, actor.id
    req.rating, req.rating_note, req.rated_at = None, "", None
    if req.handler_id is None:
        req.handler_id = actor.id
    _change(req, actor, "closed", now, status="closed", note=answer)
    save(req)
    if first_response:
        points.on_request_response(actor, req, now)
    points.on_request_closed(actor, req, now)


@refuses_stale()
def rate(req: Request, rating: str, note: str, now: datetime) -> None:
    """The resident's rating of the answer, through the household link; once per answer."""
    if req.status != "closed":
        raise ServiceError("办结后才能评价。")
    if req.rated_at is not None:
        raise ServiceError("这次答复已经评价过了。")
    if rating not in RATINGS:
        raise ServiceError("请选择满意、基本满意或不满意。", "rating")
    req.rating, req.rating_note, req.rated_at = rating, clean_text(note, "意见", 200, 0, "note"), now
    _change(req, None, "rated", now, note=RATINGS[rating] + (f"：{req.rating_note}"
                                                             if req.rating_note else ""),
            rating=RATINGS[rating])
    save(req)


def reopen_until(req: Request) -> datetime | None:
    if req.status != "closed" or req.closed_at is None:
        return None
    return req.closed_at + timedelta(days=town_settings(req.town_id).reopen_days)


@refuses_stale()
def reopen(req: Request, reason: str, now: datetime) -> None:
    """The resident reopens an answer within the town's window: back to the level that closed
    it, with that level's deadline from now."""
    until = reopen_until(req)
    if until is None:
        raise ServiceError("只有已办结的诉求可以重新打开。")
    if now > until:
        raise ServiceError(f"已超过 {town_settings(req.town_id).reopen_days} 天的重新打开期限。"
                           "如有新问题，请重新提交。")
    reason = clean_text(reason, "重新打开的原因", 500, 4, "reason")
    ev = _change(req, None, "reopened", now, status="new", level=req.closed_level or 0,
                 note=reason)
    level = _set_dues(req, req.closed_level or 0, now)  # or above, if that post is vacant now
    ev.to_level = level
    # the deadlines of levels below were met the first time round
    req.missed &= ~sum(1 << k for k in range(level, TOP + 1))
    req.answer, req.closed_at, req.closed_level, req.closed_by_id = None, None, None, None
    # the rating was of the answer just withdrawn (it stays in the timeline's "rated" event)
    req.rating, req.rating_note, req.rated_at = None, "", None
    req.handler_id, req.helper_done_at = None, None
    req.reopen_count += 1
    save(req)
    points.on_request_reopened(req, now)


@refuses_stale()
def record_mediation(actor, scope, req: Request, data: dict, now: datetime) -> Mediation:
    """矛盾纠纷调解: a mediation session; with outcome "agreed", the signed agreement."""
    if not scope.allows("log", req.path) and req.helper_id != actor.id:
        raise ServiceError("只有负责的三长、干部或接单人可以记录调解。")
    sync(req, now)
    outcome = data.get("outcome")
    if outcome not in ("agreed", "not_agreed"):
        raise ServiceError("请选择调解结果。", "outcome")
    held_at = data.get("held_at") or now
    if held_at > now + timedelta(minutes=5):
        raise ServiceError("调解时间不能晚于现在。", "held_at")
    m = Mediation(
        request_id=req.id, held_at=held_at, recorded_by_id=actor.id, created_at=now,
        parties=clean_text(data.get("parties"), "当事人", 200, 2, "parties"),
        mediators=clean_text(data.get("mediators"), "调解人", 200),
        outcome=outcome, note=clean_text(data.get("note"), "调解经过", 2000))
    if outcome == "agreed":
        m.agreement_title = clean_text(data.get("agreement_title"), "协议名称", 60, 2,
                                   "agreement_title")
        m.agreement_terms = clean_text(data.get("agreement_terms"), "协议内容", 2000, 4,
                                   "agreement_terms")
        signed_on: date | None = data.get("signed_on")
        if signed_on is None:
            raise ServiceError("请填写签订日期。", "signed_on")
        if signed_on > local_today(now):
            raise ServiceError("签订日期不能晚于今天。", "signed_on")
        m.signed_on = signed_on
    db.session.add(m)
    db.session.flush()
    summary = m.outcome_label + (f"：{m.agreement_title}（{m.signed_on:%Y-%m-%d} 签订）"
                                 if outcome == "agreed" else "")
    _change(req, actor, "mediation", now, note=f"当事人：{m.parties}。{summary}",
            outcome=m.outcome_label, title=m.agreement_title or None)
    save(req)
    return m


# -- reading -------------------------------------------------------------------------------------
def household_by_token(token: str) -> Household | None:
    if not token or len(token) > 32:
        return None
    return db.session.execute(
        select(Household).options(joinedload(Household.neighborhood))
        .where(Household.intake_token == token)).scalar_one_or_none()


def ensure_intake_token(actor, household: Household, renew: bool = False) -> str:
    """The household's link secret, made on first use; ``renew`` replaces a leaked one."""
    from portal.blueprints.regions.services import new_intake_token

    if household.intake_token and not renew:
        return household.intake_token
    household.intake_token = new_intake_token()
    if renew:
        record(actor, "household.renew_link", household, household.neighborhood.path,
               head=household.head_name)
    return household.intake_token


def load(request_id: int) -> Request | None:
    return db.session.execute(
        select(Request).options(joinedload(Request.household).joinedload(Household.neighborhood),
                                joinedload(Request.category), joinedload(Request.department),
                                joinedload(Request.handler), joinedload(Request.helper))
        .where(Request.id == request_id)).unique().scalar_one_or_none()


def timeline(request_id: int) -> list[RequestEvent]:
    return list(db.session.scalars(
        select(RequestEvent).options(joinedload(RequestEvent.user))
        .where(RequestEvent.request_id == request_id)
        .order_by(RequestEvent.at, RequestEvent.id)))


def mediations(request_id: int) -> list[Mediation]:
    return list(db.session.scalars(
        select(Mediation).options(joinedload(Mediation.recorded_by))
        .where(Mediation.request_id == request_id).order_by(Mediation.held_at, Mediation.id)))


def household_requests(household_id: int, limit: int = 50) -> list[Request]:
    return list(db.session.scalars(
        select(Request).options(joinedload(Request.category))
        .where(Request.household_id == household_id)
        .order_by(Request.created_at.desc(), Request.id.desc()).limit(limit)))


def responders(req: Request, level: int) -> list[str]:
    """Names of the people in post who answer the request at ``level``."""
    from portal.blueprints.auth.models import User

    return list(db.session.scalars(
        select(User.name).join(Post, Post.user_id == User.id)
        .where(Post.region_id.in_(handler_nodes(req.path, level)),
               Post.role.in_(HANDLER_ROLES[level]), Post.ended_at.is_(None))
        .order_by(Post.role.desc(), User.name)))


def _list_options():
    return (joinedload(Request.household), joinedload(Request.category))


@dataclass
class Queue:
    waiting: list = field(default_factory=list)  # (request, Effective), soonest deadline first
    working: list = field(default_factory=list)  # oldest first; helper-done ones first
    more: bool = False


def _queue_clause(scope, now: datetime):
    """SQL: the request is (effectively) at the level of one of the user's posts, in that post's
    subtree; None when the user holds no handler post."""
    alts = [and_(path_range(Request.path, gr.path),
                 effective_level_sql(now) == QUEUE_LEVEL[gr.role])
            for gr in scope.grants if gr.role in QUEUE_LEVEL]
    return or_(*alts) if alts else None


def queue(scope, now: datetime, limit: int = 100) -> Queue:
    """Open requests at the level of each of the user's posts, over the post's subtree."""
    mine = _queue_clause(scope, now)
    out = Queue()
    if mine is None:
        return out
    deadline = effective_deadline_sql(now)
    rows = list(db.session.scalars(
        select(Request).options(*_list_options())
        .where(Request.status != "closed", mine)
        .order_by(case((Request.status == "new", 0), else_=1), deadline,
                  case((Request.helper_done_at.is_not(None), 0), else_=1), Request.updated_at)
        .limit(limit + 1)))
    out.more = len(rows) > limit
    for req in rows[:limit]:
        eff = effective(req, now)
        (out.waiting if req.status == "new" else out.working).append((req, eff))
    return out


def board(scope, user_id: int, now: datetime, limit: int = 100):
    """接单栏: (open, mine) — requests offered to helpers in the user's subtrees, not yet taken;
    and those the user has taken that are still open."""
    tops = sorted({gr.path for gr in scope.grants if gr.role in HELPER_ROLES})
    if not tops:
        return [], []
    where = or_(*(path_range(Request.path, p) for p in tops))
    open_ = list(db.session.scalars(
        select(Request).options(*_list_options())
        .where(Request.status != "closed", Request.open_to_helpers,
               Request.helper_id.is_(None), where)
        .order_by(Request.updated_at).limit(limit)))
    mine = list(db.session.scalars(
        select(Request).options(*_list_options())
        .where(Request.status != "closed", Request.helper_id == user_id)
        .order_by(Request.claimed_at)))
    return open_, mine


def overdue(scope, level: int, now: datetime, limit: int = 200):
    """Open requests in the user's scope whose response deadline at ``level`` passed without a
    response, the longest overdue first."""
    due = (Request.due_0, Request.due_1, Request.due_2, Request.due_3)[level]
    rows = list(db.session.scalars(
        select(Request).options(*_list_options())
        .where(Request.status != "closed", scope.region_clause(Request.path),
               missed_sql(level, now))
        .order_by(due, Request.id).limit(limit + 1)))
    return [(r, effective(r, now)) for r in rows[:limit]], len(rows) > limit


def overdue_counts(scope, now: datetime) -> list[int]:
    """How many open requests in scope missed the deadline at each level (one query)."""
    row = db.session.execute(
        select(*(func.coalesce(func.sum(case((missed_sql(k, now), 1), else_=0)), 0)
                 for k in range(TOP + 1)))
        .where(Request.status != "closed", scope.region_clause(Request.path))).one()
    return [int(v) for v in row]


@dataclass
class Figures:
    """Counts for a region and period (requests created in the period)."""

    total: int = 0
    open: int = 0
    closed_at: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    by_category: list[tuple[str, int, int]] = field(default_factory=list)  # name, total, closed
    ratings: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RATINGS, 0))
    missed_neighborhood: int = 0
    disputes: int = 0
    agreements: int = 0

    @property
    def closed(self) -> int:
        return sum(self.closed_at)

    def closed_share(self, level: int) -> int | None:
        """Percent of the closed requests that were closed at ``level``."""
        return round(100 * self.closed_at[level] / self.closed) if self.closed else None

    def stayed_within(self, level: int) -> int | None:
        """Percent of closed requests solved at ``level`` or below ("不出邻", "不出组" …)."""
        return round(100 * sum(self.closed_at[:level + 1]) / self.closed) if self.closed else None

    @property
    def on_time_pct(self) -> int | None:
        """Percent of the requests that did not miss the 邻's deadline. Those still waiting
        within it count as on time, and so do those that started above 邻 (no 邻长)."""
        return round(100 * (self.total - self.missed_neighborhood) / self.total) \
            if self.total else None


def figures(region: Region, start: datetime, end: datetime, now: datetime) -> Figures:
    """Counts for requests created in [start, end) under ``region``: three queries."""
    where = (path_range(Request.path, region.path), Request.created_at >= start,
             Request.created_at < end)
    out = Figures()
    names = {c.id: (c.name, c.is_dispute) for c in options(RequestCategory, region.town_id,
                                                            active_only=False)}
    per_cat: dict[int, list[int]] = {}
    rows = select(Request.category_id, Request.status, Request.closed_level, Request.rating,
                  case((missed_sql(0, now), 1), else_=0).label("missed0")).where(*where).subquery()
    for cat, status, closed_level, rating, missed0, n in db.session.execute(
            select(rows.c.category_id, rows.c.status, rows.c.closed_level, rows.c.rating,
                   rows.c.missed0, func.count())
            .group_by(rows.c.category_id, rows.c.status, rows.c.closed_level, rows.c.rating,
                      rows.c.missed0)):
        out.total += n
        c = per_cat.setdefault(cat, [0, 0])
        c[0] += n
        if status == "closed":
            out.closed_at[closed_level] += n
            c[1] += n
        else:
            out.open += n
        if rating:
            out.ratings[rating] += n
        if missed0:
            out.missed_neighborhood += n
        if names.get(cat, ("", False))[1]:
            out.disputes += n
    out.by_category = sorted(((names.get(cid, ("?", False))[0], t, c)
                              for cid, (t, c) in per_cat.items()), key=lambda r: (-r[1], r[0]))
    out.agreements = db.session.scalar(
        select(func.count(func.distinct(Mediation.request_id)))
        .join(Request, Mediation.request_id == Request.id)
        .where(*where, Mediation.outcome == "agreed")) or 0
    return out


def ledger_rows(region: Region, start: datetime, end: datetime, now: datetime, batch: int = 2000):
    """收集问题台账: every request created in [start, end) under ``region``, oldest first, as
    (request, Effective, names, extra) where names maps region id → name (the region's subtree
    and its ancestors) and extra holds the names shown with the row. Streams in batches."""
    from sqlalchemy.orm import aliased

    from portal.blueprints.auth.models import User

    names = dict(db.session.execute(
        select(Region.id, Region.name).where(or_(path_range(Region.path, region.path),
                                                 Region.id.in_(region.ancestor_ids)))).all())
    handler, helper = aliased(User), aliased(User)
    last = (datetime.min, 0)
    while True:
        rows = list(db.session.execute(
            select(Request, Household.head_name, Household.address, RequestCategory.name,
                   Department.name, handler.name, helper.name)
            .join(Household, Request.household_id == Household.id)
            .join(RequestCategory, Request.category_id == RequestCategory.id)
            .outerjoin(Department, Request.department_id == Department.id)
            .outerjoin(handler, Request.handler_id == handler.id)
            .outerjoin(helper, Request.helper_id == helper.id)
            .where(path_range(Request.path, region.path), Request.created_at >= start,
                   Request.created_at < end,
                   or_(Request.created_at > last[0],
                       and_(Request.created_at == last[0], Request.id > last[1])))
            .order_by(Request.created_at, Request.id).limit(batch)))
        if not rows:
            return
        for req, head, address, category, department, handler_name, helper_name in rows:
            yield req, effective(req, now), names, {
                "head": head, "address": address, "category": category,
                "department": department or "", "handler": handler_name or "",
                "helper": helper_name or ""}
        last = (rows[-1][0].created_at, rows[-1][0].id)
        for row in rows:  # let the batch go: an export of a year holds many thousands
            db.session.expunge(row[0])


def pending_count(scope, now: datetime) -> int:
    """Requests waiting for the user's response (the 邻长 home's badge): one query."""
    mine = _queue_clause(scope, now)
    if mine is None:
        return 0
    return db.session.scalar(select(func.count()).select_from(Request).where(
        Request.status == "new", mine))


# -- Helper C: reports (overdue lists, figures, 台账) ------------------------------------------------
def region_names(ids) -> dict[int, str]:
    """Names of the given regions, one query."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    return dict(db.session.execute(select(Region.id, Region.name).where(Region.id.in_(ids))).all())


def region_family(region: Region) -> tuple[list[Region], list[Region]]:
    """The ancestors (top first) and the children (by name) of ``region``, in one query."""
    above = region.ancestor_ids[:-1]
    rows = list(db.session.scalars(
        select(Region).where(or_(Region.id.in_(above), Region.parent_id == region.id))
        .order_by(Region.path)))
    ancestors = [r for r in rows if r.id in above]
    children = sorted((r for r in rows if r.parent_id == region.id), key=lambda r: r.name)
    return ancestors, children


@dataclass
class ChildFigures:
    """One row of the breakdown of a region's figures by its child regions."""

    region: Region
    total: int = 0
    closed: int = 0
    closed_neighborhood: int = 0
    missed_neighborhood: int = 0

    @property
    def open(self) -> int:
        return self.total - self.closed

    @property
    def within_neighborhood(self) -> int | None:
        """Percent of the closed requests closed at 邻 ("微事不出邻")."""
        return round(100 * self.closed_neighborhood / self.closed) if self.closed else None

    @property
    def on_time_pct(self) -> int | None:
        return round(100 * (self.total - self.missed_neighborhood) / self.total) \
            if self.total else None


def breakdown(region: Region, children: list[Region], start: datetime, end: datetime,
              now: datetime) -> list[ChildFigures]:
    """:func:`figures`' main counts per child region of ``region`` (one query; the busiest
    first). ``children``: from :func:`region_family`."""
    if not children:
        return []
    depth = len(region.ancestor_ids)
    out = {c.id: ChildFigures(c) for c in children}
    closed = Request.status == "closed"
    for path, total, n_closed, closed0, missed0 in db.session.execute(
            select(Request.path, func.count(),
                   func.coalesce(func.sum(case((closed, 1), else_=0)), 0),
                   func.coalesce(func.sum(case((and_(closed, Request.closed_level == 0), 1),
                                               else_=0)), 0),
                   func.coalesce(func.sum(case((missed_sql(0, now), 1), else_=0)), 0))
            .where(path_range(Request.path, region.path), Request.created_at >= start,
                   Request.created_at < end)
            .group_by(Request.path)):
        parts = path.strip("/").split("/")
        row = out.get(int(parts[depth])) if len(parts) > depth else None
        if row is None:  # its child node moved away since: in the totals, not in a row
            continue
        row.total += int(total)
        row.closed += int(n_closed)
        row.closed_neighborhood += int(closed0)
        row.missed_neighborhood += int(missed0)
    return sorted(out.values(), key=lambda r: (-r.total, r.region.name))
