"""Rules of notices (通知公告) and call-outs (倡议). Plain functions raising ServiceError; the
views parse, call and render.

Notices: a 片长 (over their 片) or village / town staff (over their subtree) publishes to a
region; every person holding an active post inside that region's subtree (邻长, 组长, 片长, staff,
volunteers), the publisher left out, gets a receipt row, written by one INSERT … SELECT.

Call-outs: a 邻长 for their 邻 or a 组长 for their 组 calls neighbours out (time, place, an
optional cap on people); neighbours sign up on the public link; afterwards the caller records it
as duty logs (文明示范员) of the households that took part, through duties.services.log_duty."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, and_, func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from portal.audit import record
from portal.blueprints.auth.models import User
from portal.blueprints.duties.models import ChecklistItem
from portal.blueprints.notices.models import CallOut, CallOutSignup, Notice, NoticeRecipient
from portal.blueprints.regions.models import Household, Post, Region
from portal.clock import utcnow
from portal.errors import ServiceError, clean_text
from portal.extensions import db
from portal.phones import check_phone
from portal.scope import path_range

#: Who publishes notices: a 片长 over their 片, village and town staff, admins (the seeds:
#: "片长在线发布通知公告"; a 组长 or 邻长 reaches their people with a call-out instead).
PUBLISH_ROLES = frozenset({"area_chief", "village_staff", "town_staff", "admin"})
#: Who calls neighbours out, and on which level of region.
CALLOUT_ROLES = {"neighbor_chief": "neighborhood", "group_chief": "group"}
#: The 七员 duty a call-out is logged as (found by title in the town's 权责清单).
CALLOUT_DUTY = "文明示范员"
PAGE = 20
#: Levels a publisher may pick below their own post's node (a town: its villages and 片).
PICK_DEPTH = 2
LEVEL_ORDER = ("town", "village", "area", "group", "neighborhood")


# -- notices: who may do what ---------------------------------------------------------------------
def publish_tops(scope) -> list[str]:
    """Paths of the highest nodes the user may publish to."""
    paths = sorted({gr.path for gr in scope.grants if gr.role in PUBLISH_ROLES})
    tops: list[str] = []
    for p in paths:
        if not any(p.startswith(t) for t in tops):
            tops.append(p)
    return tops


def may_publish_at(scope, path: str) -> bool:
    return bool(scope.roles_at(path) & PUBLISH_ROLES)


def may_manage(scope, user_id: int, notice: Notice) -> bool:
    """The publisher, or whoever may publish over the notice's region, sees its receipts and may
    withdraw it."""
    return notice.published_by_id == user_id or may_publish_at(scope, notice.path)


def publish_regions(scope) -> list[Region]:
    """The regions the user may pick to publish to: their posts' nodes and two levels below
    (a town's villages and 片; a 片's groups), never single 邻."""
    clauses = []
    for gr in scope.grants:
        if gr.role not in PUBLISH_ROLES:
            continue
        if gr.path == "/":
            clauses.append(Region.level.in_(("town", "village")))
            continue
        depth = gr.path.strip("/").count("/")
        levels = [lv for lv in LEVEL_ORDER[depth:depth + PICK_DEPTH + 1] if lv != "neighborhood"]
        clauses.append(and_(path_range(Region.path, gr.path), Region.level.in_(levels)))
    if not clauses:
        return []
    return list(db.session.scalars(select(Region).where(or_(*clauses)).order_by(Region.path)))


# -- notices: changes -----------------------------------------------------------------------------
def publish(actor, scope, region: Region | None, title: str, body: str,
            now: datetime | None = None) -> Notice:
    """Publish a notice to ``region``'s subtree; the recipients are written in one statement."""
    now = now or utcnow()
    if region is None:
        raise ServiceError("请选择发给哪里。", "region_id")
    if not may_publish_at(scope, region.path):
        raise PermissionError("您不能向这个范围发布通知。")
    title = clean_text(title, "标题", 60, 2, "title")
    body = clean_text(body, "正文", 5000, 5, "body")
    notice = Notice(region_id=region.id, path=region.path, title=title, body=body,
                    published_by_id=actor.id, published_at=now)
    db.session.add(notice)
    db.session.flush()
    people = (
        select(literal(notice.id, Integer), Post.user_id, func.min(Region.path))
        .join(Region, Post.region_id == Region.id)
        .join(User, User.id == Post.user_id)
        .where(path_range(Region.path, region.path), Post.ended_at.is_(None), User.active,
               Post.user_id != actor.id)
        .group_by(Post.user_id))
    # rowcount of an INSERT needs preserve_rowcount (SQLAlchemy keeps it for UPDATE/DELETE only)
    result = db.session.connection().execute(
        insert(NoticeRecipient.__table__).from_select(["notice_id", "user_id", "path"], people),
        execution_options={"preserve_rowcount": True})
    notice.recipient_count = result.rowcount
    if notice.recipient_count == 0:
        raise ServiceError("这个范围里还没有其他在岗人员，通知没有人能收到。", "region_id")
    record(actor, "notice.publish", notice, region.path, title=title, region=region.name,
           recipients=notice.recipient_count)
    return notice


def withdraw(actor, notice: Notice, now: datetime | None = None) -> None:
    if notice.withdrawn_at is not None:
        raise ServiceError("这条通知已经撤回了。")
    notice.withdrawn_at = now or utcnow()
    notice.withdrawn_by_id = actor.id
    record(actor, "notice.withdraw", notice, notice.path, title=notice.title,
           read=read_count(notice.id), recipients=notice.recipient_count)


def mark_read(notice_id: int, user_id: int, now: datetime | None = None) -> bool:
    """Set the receipt's read time the first time only; True when this opening was the first."""
    result = db.session.execute(
        update(NoticeRecipient)
        .where(NoticeRecipient.notice_id == notice_id, NoticeRecipient.user_id == user_id,
               NoticeRecipient.read_at.is_(None))
        .values(read_at=now or utcnow()))
    return result.rowcount == 1


# -- notices: reading -----------------------------------------------------------------------------
def load_notice(notice_id: int, user_id: int):
    """(notice with region and publisher, the user's receipt or None) in one query."""
    from sqlalchemy.orm import contains_eager

    row = db.session.execute(
        select(Notice, NoticeRecipient)
        .join(Notice.region)
        .join(Notice.publisher)
        .outerjoin(NoticeRecipient, and_(NoticeRecipient.notice_id == Notice.id,
                                         NoticeRecipient.user_id == user_id))
        .options(contains_eager(Notice.region), contains_eager(Notice.publisher))
        .where(Notice.id == notice_id)).first()
    return (None, None) if row is None else (row[0], row[1])


def read_count(notice_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(NoticeRecipient).where(
        NoticeRecipient.notice_id == notice_id, NoticeRecipient.read_at.is_not(None)))


def inbox(user_id: int, page: int):
    """(rows of (notice, region name, publisher name, read_at), more) — unread first, newest
    first; withdrawn notices left out."""
    rows = db.session.execute(
        select(Notice, Region.name, User.name, NoticeRecipient.read_at)
        .join(NoticeRecipient, NoticeRecipient.notice_id == Notice.id)
        .join(Region, Region.id == Notice.region_id)
        .join(User, User.id == Notice.published_by_id)
        .where(NoticeRecipient.user_id == user_id, Notice.withdrawn_at.is_(None))
        .order_by(NoticeRecipient.read_at.is_not(None), Notice.published_at.desc(),
                  Notice.id.desc())
        .limit(PAGE + 1).offset((page - 1) * PAGE)).all()
    return rows[:PAGE], len(rows) > PAGE


def sent(scope, user_id: int, page: int):
    """Notices the user published or may manage, newest first, with their read counts."""
    tops = publish_tops(scope)
    where = or_(Notice.published_by_id == user_id, *(path_range(Notice.path, t) for t in tops))
    reads = (select(func.count()).select_from(NoticeRecipient)
             .where(NoticeRecipient.notice_id == Notice.id, NoticeRecipient.read_at.is_not(None))
             .correlate(Notice).scalar_subquery())
    rows = db.session.execute(
        select(Notice, Region.name, User.name, reads)
        .join(Region, Region.id == Notice.region_id)
        .join(User, User.id == Notice.published_by_id)
        .where(where).order_by(Notice.published_at.desc(), Notice.id.desc())
        .limit(PAGE + 1).offset((page - 1) * PAGE)).all()
    return rows[:PAGE], len(rows) > PAGE


@dataclass
class Receipt:
    user_id: int
    name: str
    roles: str
    read_at: datetime | None


@dataclass
class ReceiptGroup:
    name: str
    rows: list[Receipt]

    @property
    def read(self) -> int:
        return sum(1 for r in self.rows if r.read_at)


def receipts(notice: Notice) -> list[ReceiptGroup]:
    """The recipients grouped by the node one level below the notice's region (村 of a town
    notice, 片 of a village's …); those on the region itself first as 本级. Names and roles,
    no phones. Three queries: receipts with names, roles, group names."""
    rows = db.session.execute(
        select(NoticeRecipient.user_id, NoticeRecipient.path, NoticeRecipient.read_at, User.name)
        .join(User, User.id == NoticeRecipient.user_id)
        .where(NoticeRecipient.notice_id == notice.id)
        .order_by(NoticeRecipient.path, User.name, User.id)).all()
    roles: dict[int, list[str]] = {}
    from portal.blueprints.regions.models import ROLE_LABELS

    for user_id, role in db.session.execute(
            select(Post.user_id, Post.role).join(Region, Region.id == Post.region_id)
            .where(path_range(Region.path, notice.path), Post.ended_at.is_(None))
            .order_by(Post.id)):
        label = ROLE_LABELS[role]
        if label not in roles.setdefault(user_id, []):
            roles[user_id].append(label)
    depth = notice.path.strip("/").count("/") + 1
    child_ids = {_segment(p, depth) for _, p, _, _ in rows} - {None}
    names = dict(db.session.execute(select(Region.id, Region.name).where(
        Region.id.in_(child_ids))).all()) if child_ids else {}
    groups: dict[int | None, ReceiptGroup] = {}
    for user_id, path, read_at, name in rows:
        key = _segment(path, depth)
        group = groups.setdefault(key, ReceiptGroup(names.get(key, "本级") if key else "本级", []))
        group.rows.append(Receipt(user_id, name, "、".join(roles.get(user_id, [])) or "已离岗",
                                  read_at))
    ordered = sorted(groups.items(), key=lambda kv: (kv[0] is not None, kv[1].name))
    return [g for _, g in ordered]


def _segment(path: str, depth: int) -> int | None:
    parts = path.strip("/").split("/")
    return int(parts[depth]) if len(parts) > depth else None


# -- call-outs ------------------------------------------------------------------------------------
def callout_regions(scope) -> list[Region]:
    """The 邻 the user is 邻长 of and the 组 they are 组长 of."""
    ids = [gr.region_id for gr in scope.grants
           if gr.role in CALLOUT_ROLES and gr.region_id is not None]
    if not ids:
        return []
    return list(db.session.scalars(select(Region).where(Region.id.in_(ids))
                                   .order_by(Region.path)))


def may_call_out(scope, region: Region) -> bool:
    return any(gr.role in CALLOUT_ROLES and gr.region_id == region.id
               and CALLOUT_ROLES[gr.role] == region.level for gr in scope.grants)


def create_callout(actor, scope, region: Region | None, data: dict,
                   now: datetime | None = None) -> CallOut:
    now = now or utcnow()
    if region is None or not may_call_out(scope, region):
        raise ServiceError("请选择您负责的邻或组。", "region_id")
    title = clean_text(data.get("title"), "倡议标题", 40, 2, "title")
    task = clean_text(data.get("task"), "要做的事", 1000, 4, "task")
    place = clean_text(data.get("place"), "地点", 60, 2, "place")
    starts_at = data.get("starts_at")
    if not isinstance(starts_at, datetime):
        raise ServiceError("请填写时间，如 2026-07-10 08:00。", "starts_at")
    if starts_at <= now:
        raise ServiceError("时间应在现在之后。", "starts_at")
    if starts_at > now + timedelta(days=60):
        raise ServiceError("只能发起 60 天内的倡议。", "starts_at")
    cap = data.get("cap")
    if cap is not None and not 1 <= cap <= 500:
        raise ServiceError("人数上限应为 1–500，不限就不填。", "cap")
    callout = CallOut(region_id=region.id, path=region.path, title=title, task=task,
                      place=place, starts_at=starts_at, cap=cap, token=secrets.token_hex(16),
                      created_by_id=actor.id, created_at=now)
    db.session.add(callout)
    record(actor, "callout.create", callout, region.path, title=title, region=region.name,
           starts_at=starts_at, place=place, cap=cap)
    return callout


def load_callout(callout_id: int) -> CallOut | None:
    from sqlalchemy.orm import joinedload

    return db.session.scalar(select(CallOut).options(
        joinedload(CallOut.region), joinedload(CallOut.creator)).where(CallOut.id == callout_id))


def callout_by_token(token: str) -> CallOut | None:
    from sqlalchemy.orm import joinedload

    if not token or len(token) != 32:
        return None
    return db.session.scalar(select(CallOut).options(
        joinedload(CallOut.region), joinedload(CallOut.creator)).where(CallOut.token == token))


def signups(callout_id: int) -> list[CallOutSignup]:
    return list(db.session.scalars(select(CallOutSignup).where(
        CallOutSignup.callout_id == callout_id).order_by(CallOutSignup.created_at,
                                                         CallOutSignup.id)))


def people_signed(callout_id: int, besides: int | None = None) -> int:
    q = select(func.coalesce(func.sum(CallOutSignup.people), 0)).where(
        CallOutSignup.callout_id == callout_id)
    if besides is not None:
        q = q.where(CallOutSignup.id != besides)
    return db.session.scalar(q)


def closed_reason(callout: CallOut, people: int, now: datetime) -> str | None:
    """Why sign-up is closed now (a sentence for the page), or None when it is open."""
    if callout.cancelled_at is not None:
        return "这个倡议已取消，不再报名。"
    if now >= callout.starts_at:
        return "活动已经开始（或已结束），报名已截止。"
    if callout.cap is not None and people >= callout.cap:
        return f"报名人数已满（{callout.cap} 人），谢谢关注。"
    return None


def sign_up(callout: CallOut, data: dict, now: datetime | None = None):
    """Save a neighbour's sign-up; the same phone again updates its row. Returns (signup,
    created)."""
    now = now or utcnow()
    # lock the call-out's row (PostgreSQL) so two last-place sign-ups cannot both pass the cap
    db.session.execute(select(CallOut.id).where(CallOut.id == callout.id).with_for_update())
    name = clean_text(data.get("name"), "姓名", 20, 1, "name")
    phone = (data.get("phone") or "").strip() or None
    if phone:
        phone = check_phone(phone, "phone")
    people = data.get("people")
    if not isinstance(people, int) or not 1 <= people <= 10:
        raise ServiceError("人数应为 1–10。", "people")
    note = clean_text(data.get("note"), "备注", 100)
    row = None
    if phone:
        row = db.session.scalar(select(CallOutSignup).where(
            CallOutSignup.callout_id == callout.id, CallOutSignup.phone == phone))
    taken = people_signed(callout.id, besides=row.id if row else None)
    reason = closed_reason(callout, taken, now)
    if reason:
        raise ServiceError(reason)
    if callout.cap is not None and taken + people > callout.cap:
        raise ServiceError(f"只剩 {callout.cap - taken} 个名额，请减少人数。", "people")
    created = row is None
    if row is None:
        row = CallOutSignup(callout_id=callout.id, phone=phone, created_at=now)
        db.session.add(row)
    row.name, row.people, row.note, row.updated_at = name, people, note, now
    try:
        db.session.flush()
    except IntegrityError:
        # the same phone raced in on another request: update that row instead
        db.session.rollback()
        raise ServiceError("这个手机号刚刚报过名了，请刷新页面后再改。", "phone") from None
    return row, created


def cancel_callout(actor, callout: CallOut, now: datetime | None = None) -> None:
    if callout.cancelled_at is not None:
        raise ServiceError("这个倡议已经取消了。")
    if callout.logged_at is not None:
        raise ServiceError("已记为履职的倡议不能取消。")
    callout.cancelled_at = now or utcnow()
    callout.cancelled_by_id = actor.id
    record(actor, "callout.cancel", callout, callout.path, title=callout.title,
           signups=len(signups(callout.id)))


def duty_item(town_id: int) -> ChecklistItem | None:
    """The town's active 文明示范员 duty, or None when the town renamed or switched it off."""
    return db.session.scalar(select(ChecklistItem).where(
        ChecklistItem.town_id == town_id, ChecklistItem.kind == "duty", ChecklistItem.active,
        ChecklistItem.title == CALLOUT_DUTY))


def region_households(callout: CallOut) -> list[Household]:
    """The households of the call-out's 邻 (or of every 邻 of its 组), by address."""
    from sqlalchemy.orm import contains_eager

    return list(db.session.scalars(
        select(Household).join(Region, Household.neighborhood_id == Region.id)
        .options(contains_eager(Household.neighborhood))
        .where(path_range(Region.path, callout.path))
        .order_by(Region.path, Household.head_name, Household.id)))


def matched_household_ids(households: list[Household], rows: list[CallOutSignup]) -> set[int]:
    """Households whose phone matches a sign-up's phone (ticked in advance on the log form)."""
    phones = {r.phone for r in rows if r.phone}
    return {h.id for h in households if h.phone and h.phone in phones}


def log_token(callout_id: int, household_id: int) -> str:
    """The duty log's one-time token: the same call-out and household give the same token, so
    a resent form (or two at once) writes each household's log once."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sanzhang:callout:{callout_id}:{household_id}"))


def log_as_duty(actor, callout: CallOut, household_ids: list[int], duty_item_id: int | None,
                now: datetime | None = None) -> int:
    """记为履职: one duty log (method 其他, at the call-out's time) per ticked household of the
    call-out's region, through duties.services.log_duty (points and last contact included).
    Once per call-out. Returns the number of logs written."""
    from portal.blueprints.duties import services as duty_svc

    now = now or utcnow()
    if callout.created_by_id != actor.id:
        raise PermissionError("只有发起倡议的人可以记为履职。")
    if callout.logged_at is not None:
        raise ServiceError("这个倡议已经记为履职了，不能重复记。")
    if callout.cancelled_at is not None:
        raise ServiceError("已取消的倡议不能记为履职。")
    if callout.starts_at > now:
        raise ServiceError("活动开始之后才能记为履职。")
    if duty_item_id is None:
        raise ServiceError("请选择记为哪一项七员职责。", "duty_item_id")
    households = {h.id: h for h in region_households(callout)}
    chosen = [households[i] for i in dict.fromkeys(household_ids) if i in households]
    if not chosen or len(chosen) != len(set(household_ids)):
        raise ServiceError("请勾选参加了活动的联系户（本邻/本组的住户）。", "households")
    rows = signups(callout.id)
    people = sum(r.people for r in rows)
    note = (f"倡议「{callout.title}」（{callout.place}）：报名 {len(rows)} 起共 {people} 人，"
            f"{len(chosen)} 户参加。")
    written = 0
    for household in chosen:
        _, created = duty_svc.log_duty(
            actor, household, duty_item_id=duty_item_id, method="other",
            occurred_at=callout.starts_at, note=note, photo=None,
            token=log_token(callout.id, household.id), now=now)
        written += created
    # claim the call-out: a second request that got this far finds logged_at set and stops
    claimed = db.session.execute(
        update(CallOut).where(CallOut.id == callout.id, CallOut.logged_at.is_(None))
        .values(logged_at=now, logged_households=len(chosen)))
    if claimed.rowcount != 1:
        raise ServiceError("这个倡议已经记为履职了，不能重复记。")
    record(actor, "callout.log", callout, callout.path, title=callout.title,
           households=len(chosen), people=people, signups=len(rows))
    return written
