"""Rules for 议事: venues, agenda items and their lifecycle, meetings, check-in, votes, results,
corrections and the follow-up answer ("有议必有答").

Lifecycle of an item: 提议 (proposed) → 已排期 (scheduled into a meeting) → 表决中 (voting) →
通过 / 未通过 / 流会 (passed / rejected / no_quorum; the result is locked) → 落实中 (implementing:
an owner and a due date) → 已答复 (answered). A matter outside the 议事清单 is raised as
``off_list`` and waits for staff, who accept it into a 六议 category or decline it (不予上会).
Every change writes an audit row in the same transaction.

Who may do what is decided here from the caller's :class:`~portal.scope.Scope`:

* raise an item: any 三长 or staff role over the item's region (a 邻长 on their 邻);
* convene and chair a meeting (schedule, open, check in, run votes, end, write minutes): a role
  that reads the meeting's region — a 邻长 their 邻's 屋场会, a 组长 their group's 恳谈会, village
  staff anything in the village;
* venues, off-list decisions, result corrections and answers: staff (manage) over the region.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.exc import StaleDataError

from portal.audit import record
from portal.blueprints.agenda.models import (
    CHOICES,
    MEETING_KINDS,
    RULES,
    VENUE_KINDS,
    VOTE_MODES,
    AgendaItem,
    Attendance,
    Meeting,
    ResultCorrection,
    Venue,
    Vote,
)
from portal.blueprints.duties.models import ChecklistItem
from portal.blueprints.points import services as points
from portal.blueprints.regions.models import Household, Region
from portal.clock import local_today, utcnow
from portal.errors import ServiceError, clean_text
from portal.extensions import db
from portal.scope import path_range, town_id_of

STALE = "这个议题刚被别人更新过，请刷新后再试。"
OUTCOME_LABELS = {"passed": "通过", "rejected": "未通过", "no_quorum": "流会"}
#: Code alphabet: no 0/O, 1/I/L — read aloud at a meeting and typed on a phone.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
BAD_CODE = "投票码无效，或会议已结束。请核对后重新输入。"


# -- pass rules ----------------------------------------------------------------------------------
def quorum_needed(rule: str, entitled: int) -> int | None:
    """Households that must be present for the vote to count, or None when the rule sets none.
    村民会议: "本村十八周岁以上村民的过半数，或者本村三分之二以上的户的代表参加" — the household form,
    two thirds *or more* (以上 includes the figure itself)."""
    if rule == "assembly":
        return -(-2 * entitled // 3)  # ceil(2/3 · entitled)
    return None


def outcome(rule: str, yes: int, no: int, abstain: int, present: int, entitled: int) -> str:
    """The result of a closed vote: "passed", "rejected" or "no_quorum" (流会).

    * ``cast_majority``: more 赞成 than half of the votes cast (赞成 + 反对; 弃权 is not a vote
      cast), so a tie fails;
    * ``present_majority``: more 赞成 than half of the households present (过半数: strictly);
    * ``present_two_thirds``: 赞成 two thirds of those present or more (exactly ⅔ passes);
    * ``assembly`` (村民委员会组织法, 村民会议): two thirds of the households represented, else no
      quorum; then passed by more than half of those present.

    Nobody present is no quorum under every rule.
    """
    if rule not in RULES:
        raise ServiceError("未知的表决规则。")
    if min(yes, no, abstain, present, entitled) < 0 or yes + no + abstain > present:
        raise ServiceError("票数不能超过到会户数。")
    if present == 0:
        return "no_quorum"
    needed = quorum_needed(rule, entitled)
    if needed is not None and present < needed:
        return "no_quorum"
    if rule == "cast_majority":
        ok = 2 * yes > yes + no
    elif rule == "present_two_thirds":
        ok = 3 * yes >= 2 * present
    else:  # present_majority, assembly
        ok = 2 * yes > present
    return "passed" if ok else "rejected"


def describe_result(yes, no, abstain, result: str) -> str:
    return f"赞成 {yes} 反对 {no} 弃权 {abstain} · {OUTCOME_LABELS.get(result, result)}"


# -- helpers -------------------------------------------------------------------------------------
def _save() -> None:
    try:
        db.session.flush()
    except StaleDataError as e:
        raise ServiceError(STALE) from e


def meeting_of(item: AgendaItem) -> Meeting | None:
    """The item's meeting (from the session's identity map when already loaded)."""
    return db.session.get(Meeting, item.meeting_id) if item.meeting_id else None


def can_chair(scope, meeting: Meeting) -> bool:
    return scope.allows("view", meeting.path)


def can_manage(scope, path: str) -> bool:
    return scope.allows("manage", path)


def _need(ok: bool, message: str = "您的岗位不能在这里办理这项操作。") -> None:
    if not ok:
        raise PermissionError(message)


def deliberation_items(town_id: int, active_only: bool = True) -> list[ChecklistItem]:
    q = select(ChecklistItem).where(ChecklistItem.town_id == town_id,
                                    ChecklistItem.kind == "deliberation")
    if active_only:
        q = q.where(ChecklistItem.active.is_(True))
    return list(db.session.scalars(q.order_by(ChecklistItem.sort, ChecklistItem.id)))


def entitled_count(path: str) -> int:
    return db.session.scalar(
        select(func.count(Household.id)).join(Region, Household.neighborhood_id == Region.id)
        .where(path_range(Region.path, path))) or 0


def entitled_of(meeting: Meeting) -> int:
    """Households entitled to the meeting: as counted when it opened, or as of now before."""
    if meeting.entitled_count is not None:
        return meeting.entitled_count
    return entitled_count(meeting.path)


def present_count(meeting_id: int) -> int:
    return db.session.scalar(
        select(func.count(Attendance.id)).where(Attendance.meeting_id == meeting_id)) or 0


# -- venues --------------------------------------------------------------------------------------
def save_venue(actor, scope, venue: Venue | None, region: Region, data: dict) -> Venue:
    _need(can_manage(scope, region.path))
    name = clean_text(data.get("name"), "场所名称", 60, 2, "name")
    kind = data.get("kind")
    if kind not in VENUE_KINDS:
        raise ServiceError("请选择场所类型。", "kind")
    capacity = data.get("capacity")
    if not isinstance(capacity, int) or not 1 <= capacity <= 10000:
        raise ServiceError("可容纳人数应在 1 到 10000 之间。", "capacity")
    address = clean_text(data.get("address"), "地址", 100)
    creating = venue is None
    if creating:
        venue = Venue(region_id=region.id, path=region.path)
        db.session.add(venue)
    else:
        venue.region_id, venue.path = region.id, region.path
    venue.name, venue.kind, venue.capacity, venue.address = name, kind, capacity, address
    venue.active = bool(data.get("active", True))
    record(actor, "venue.create" if creating else "venue.update", venue, region.path,
           name=name, kind=VENUE_KINDS[kind], capacity=capacity, active=venue.active)
    return venue


def venues(scope, town_id: int | None = None, active_only: bool = False) -> list[Venue]:
    q = select(Venue).options(joinedload(Venue.region)).where(scope.region_clause(Venue.path))
    if active_only:
        q = q.where(Venue.active.is_(True))
    return list(db.session.scalars(q.order_by(Venue.path, Venue.name)))


def venues_for(path: str) -> list[Venue]:
    """Active venues a meeting at ``path`` may use: in the same town, at the region, above it or
    below it (a village meeting in a group's 议事亭)."""
    town = f"/{town_id_of(path)}/"
    ancestors = [path[:i + 1] for i in range(1, len(path)) if path[i] == "/"]
    rows = db.session.scalars(
        select(Venue).where(path_range(Venue.path, town), Venue.active.is_(True))
        .order_by(Venue.path, Venue.name))
    return [v for v in rows if v.path in ancestors or v.path.startswith(path)]


# -- agenda items --------------------------------------------------------------------------------
def raise_item(actor, scope, region: Region, data: dict,
               now: datetime | None = None) -> AgendaItem:
    """A 邻长 or staff raises a 议题 for a region in their scope. ``category_id`` is a 六议 item,
    or "off" for a matter outside the list, which waits for staff (and needs the reason).
    A listed item pays its raiser (积分) in the same transaction; an off-list one when
    staff accept it."""
    _need(scope.allows("view", region.path), "只能为您负责范围内的区域提出议题。")
    title = clean_text(data.get("title"), "议题名称", 80, 4, "title")
    background = clean_text(data.get("background"), "背景情况", 2000, 4, "background")
    proposal = clean_text(data.get("proposal"), "建议方案", 2000, 4, "proposal")
    category = data.get("category_id")
    off_list = category == "off"
    if off_list:
        category_id = None
    else:
        try:
            category_id = int(category)
        except (TypeError, ValueError):
            raise ServiceError("请选择议事清单（六议）中的类别。", "category_id") from None
        allowed = {c.id for c in deliberation_items(region.town_id)}
        if category_id not in allowed:
            raise ServiceError("这个类别不在本镇的议事清单（六议）内。清单外的事项请选"
                               "“清单外事项”，由镇村干部决定是否上会。", "category_id")
    item = AgendaItem(region_id=region.id, path=region.path, title=title, background=background,
                      proposal=proposal, category_id=category_id, off_list=off_list,
                      raised_by_id=actor.id, status="proposed")
    db.session.add(item)
    record(actor, "agenda.raise", item, region.path, title=title, off_list=off_list)
    if not off_list:
        points.on_agenda_raise(item, now or utcnow())
    return item


def decide_off_list(actor, scope, item: AgendaItem, accept: bool, category_id: int | None,
                    note: str, now: datetime | None = None) -> None:
    """Staff decide a matter raised outside the 议事清单: into a 六议 category (its raiser is
    paid now), or declined (anything it earned goes back)."""
    _need(can_manage(scope, item.path), "清单外事项由村(社区)或镇干部决定。")
    if not (item.off_list and item.category_id is None and item.status == "proposed"):
        raise ServiceError("这个议题不需要决定。")
    if accept:
        if category_id not in {c.id for c in deliberation_items(town_id_of(item.path))}:
            raise ServiceError("请选择议事清单（六议）中的类别。", "category_id")
        item.category_id = category_id
        item.status_note = clean_text(note, "说明", 200)
        action = "agenda.accept"
    else:
        item.status_note = clean_text(note, "不予上会的理由", 200, 2, "note")
        item.status = "declined"
        action = "agenda.decline"
    record(actor, action, item, item.path, title=item.title, note=item.status_note)
    _save()
    if accept:
        points.on_agenda_raise(item, now or utcnow())
    else:
        points.on_agenda_declined(actor, item, now or utcnow())


def schedule(actor, scope, item: AgendaItem, meeting: Meeting, data: dict) -> None:
    """Put an item on a meeting's agenda (at the end) with its time, pass rule and vote mode."""
    _need(can_chair(scope, meeting))
    if item.status not in ("proposed", "scheduled") or (
            item.status == "scheduled" and item.meeting_id == meeting.id):
        raise ServiceError(f"“{item.status_label}”的议题不能排期。")
    if item.category_id is None:
        raise ServiceError("清单外事项须先由干部决定是否上会。")
    if meeting.status == "ended":
        raise ServiceError("会议已结束，不能再排入议题。")
    if not item.path.startswith(meeting.path):
        raise ServiceError("议题所在区域不属于这次会议的范围。")
    minutes, rule, mode = _agenda_terms(meeting, data)
    last = db.session.scalar(select(func.max(AgendaItem.position))
                             .where(AgendaItem.meeting_id == meeting.id)) or 0
    old = item.meeting_id
    item.meeting_id, item.position = meeting.id, last + 1
    item.planned_minutes, item.rule, item.vote_mode = minutes, rule, mode
    item.status, item.status_note = "scheduled", ""
    record(actor, "agenda.schedule", item, item.path, title=item.title, meeting=meeting.title,
           rule=RULES[rule], mode=VOTE_MODES[mode], minutes=minutes,
           **({"from_meeting": old} if old else {}))
    _save()


def _agenda_terms(meeting: Meeting, data: dict) -> tuple[int, str, str]:
    minutes = data.get("planned_minutes")
    if not isinstance(minutes, int) or not 1 <= minutes <= 600:
        raise ServiceError("预计时长应在 1 到 600 分钟之间。", "planned_minutes")
    rule = data.get("rule")
    if rule not in RULES:
        raise ServiceError("请选择表决规则。", "rule")
    if rule == "assembly" and meeting.kind != "assembly":
        raise ServiceError("“村民会议”规则只用于村民会议。", "rule")
    mode = data.get("vote_mode")
    if mode not in VOTE_MODES:
        raise ServiceError("请选择表决方式。", "vote_mode")
    return minutes, rule, mode


def update_terms(actor, scope, item: AgendaItem, data: dict) -> None:
    meeting = meeting_of(item)
    _need(meeting is not None and can_chair(scope, meeting))
    if item.status != "scheduled":
        raise ServiceError("只有尚未表决的议题可以修改时长和规则。")
    item.planned_minutes, item.rule, item.vote_mode = _agenda_terms(meeting, data)
    record(actor, "agenda.terms", item, item.path, title=item.title, rule=RULES[item.rule],
           mode=VOTE_MODES[item.vote_mode], minutes=item.planned_minutes)
    _save()


def unschedule(actor, scope, item: AgendaItem, note: str = "") -> None:
    meeting = meeting_of(item)
    _need(meeting is not None and can_chair(scope, meeting))
    if item.status != "scheduled":
        raise ServiceError("只有尚未表决的议题可以撤下。")
    _renumber_after(item)
    item.meeting_id, item.position, item.status = None, 0, "proposed"
    item.status_note = clean_text(note, "说明", 200)
    record(actor, "agenda.unschedule", item, item.path, title=item.title, meeting=meeting.title)
    _save()


def _renumber_after(item: AgendaItem) -> None:
    for other in db.session.scalars(select(AgendaItem).where(
            AgendaItem.meeting_id == item.meeting_id, AgendaItem.position > item.position)):
        other.position -= 1


def move(actor, scope, item: AgendaItem, delta: int) -> None:
    """Move an item up (-1) or down (+1) on its meeting's agenda."""
    meeting = meeting_of(item)
    _need(meeting is not None and can_chair(scope, meeting))
    if meeting.status == "ended":
        raise ServiceError("会议已结束。")
    other = db.session.scalar(select(AgendaItem).where(
        AgendaItem.meeting_id == meeting.id, AgendaItem.position == item.position + delta))
    if other is None:
        return
    item.position, other.position = other.position, item.position
    record(actor, "agenda.move", item, item.path, title=item.title, position=item.position)
    _save()


def agenda(meeting_id: int) -> list[AgendaItem]:
    return list(db.session.scalars(
        select(AgendaItem).options(joinedload(AgendaItem.category))
        .where(AgendaItem.meeting_id == meeting_id).order_by(AgendaItem.position)))


def overrun(meeting: Meeting, items: list[AgendaItem]) -> int:
    """Minutes by which the planned items exceed the meeting (0 when they fit)."""
    return max(0, sum(i.planned_minutes for i in items) - meeting.planned_minutes)


# -- meetings ------------------------------------------------------------------------------------
def save_meeting(actor, scope, meeting: Meeting | None, region: Region, data: dict) -> Meeting:
    _need(scope.allows("view", region.path), "只能为您负责范围内的区域召集会议。")
    kind = data.get("kind")
    if kind not in MEETING_KINDS:
        raise ServiceError("请选择会议类型。", "kind")
    if kind == "assembly" and region.level != "village":
        raise ServiceError("村民会议须以村(社区)为范围召开。", "region_id")
    title = clean_text(data.get("title"), "会议名称", 80, 2, "title")
    starts_at = data.get("starts_at")
    if not isinstance(starts_at, datetime):
        raise ServiceError("请填写开会时间。", "starts_at")
    minutes = data.get("planned_minutes")
    if not isinstance(minutes, int) or not 10 <= minutes <= 600:
        raise ServiceError("会议时长应在 10 到 600 分钟之间。", "planned_minutes")
    venue_id = data.get("venue_id") or None
    if venue_id is not None and venue_id not in {v.id for v in venues_for(region.path)}:
        raise ServiceError("请选择本区域可用的议事场所。", "venue_id")
    creating = meeting is None
    if creating:
        meeting = Meeting(convener_id=actor.id, status="planned")
        db.session.add(meeting)
    else:
        _need(can_chair(scope, meeting))
        if meeting.status != "planned":
            raise ServiceError("会议已开始，不能再修改。")
        if region.path != meeting.path and db.session.scalar(
                select(func.count(AgendaItem.id)).where(
                    AgendaItem.meeting_id == meeting.id,
                    ~AgendaItem.path.startswith(region.path, autoescape=True))):
            raise ServiceError("已排入的议题不在新的范围内，请先撤下。", "region_id")
        if kind != "assembly" and db.session.scalar(
                select(func.count(AgendaItem.id)).where(AgendaItem.meeting_id == meeting.id,
                                                        AgendaItem.rule == "assembly")):
            raise ServiceError("已有议题使用“村民会议”规则，请先修改。", "kind")
    meeting.region_id, meeting.path = region.id, region.path
    meeting.kind, meeting.title, meeting.starts_at = kind, title, starts_at
    meeting.planned_minutes, meeting.venue_id = minutes, venue_id
    record(actor, "meeting.create" if creating else "meeting.update", meeting, region.path,
           title=title, kind=MEETING_KINDS[kind], starts_at=starts_at, minutes=minutes)
    db.session.flush()
    return meeting


def open_meeting(actor, scope, meeting: Meeting, now: datetime | None = None) -> None:
    """Start the meeting: check-in opens and the entitled households are counted."""
    _need(can_chair(scope, meeting), "只有会议范围内的召集人或干部可以主持会议。")
    if meeting.status != "planned":
        raise ServiceError("会议已经开始或已结束。")
    meeting.status, meeting.opened_at = "open", now or utcnow()
    meeting.entitled_count = entitled_count(meeting.path)
    record(actor, "meeting.open", meeting, meeting.path, title=meeting.title,
           entitled=meeting.entitled_count)
    db.session.flush()


def end_meeting(actor, scope, meeting: Meeting, now: datetime | None = None) -> int:
    """End the meeting; voting codes stop working. Items not voted go back to 提议 so that
    another meeting can take them. Returns how many went back."""
    _need(can_chair(scope, meeting))
    if meeting.status != "open":
        raise ServiceError("会议不在进行中。")
    items = agenda(meeting.id)
    if any(i.status == "voting" for i in items):
        raise ServiceError("还有议题正在表决，请先结束表决。")
    back = [item for item in items if item.status == "scheduled"]
    for item in back:
        item.meeting_id, item.position, item.status = None, 0, "proposed"
        item.status_note = f"{meeting.title}未及表决，退回待排期"
    if back:  # the minutes keep them, though they leave the agenda
        line = "未及表决、退回待排期的议题：" + "；".join(i.title for i in back) + "。"
        meeting.notes = (meeting.notes.rstrip() + "\n" + line).strip()
    meeting.status, meeting.ended_at = "ended", now or utcnow()
    for att in db.session.scalars(select(Attendance).where(Attendance.meeting_id == meeting.id,
                                                           Attendance.code.is_not(None))):
        att.code = None
    record(actor, "meeting.end", meeting, meeting.path, title=meeting.title,
           present=present_count(meeting.id), returned=len(back))
    _save()
    points.on_meeting_end(meeting, meeting.ended_at)  # pays nobody when no household came
    return len(back)


def save_minutes(actor, scope, meeting: Meeting, notes: str, recorder: str) -> None:
    _need(can_chair(scope, meeting))
    if meeting.status == "planned":
        raise ServiceError("会议开始后才能记录纪要。")
    meeting.notes = clean_text(notes, "会议记录", 10000)
    meeting.recorder = clean_text(recorder, "记录人", 40)
    record(actor, "meeting.minutes", meeting, meeting.path, title=meeting.title,
           length=len(meeting.notes))
    db.session.flush()


def save_decision(actor, scope, item: AgendaItem, decision: str) -> None:
    meeting = meeting_of(item)
    _need(meeting is not None and can_chair(scope, meeting))
    if not item.decided:
        raise ServiceError("表决结束后才能填写决议。")
    item.decision = clean_text(decision, "决议内容", 2000)
    record(actor, "agenda.decision", item, item.path, title=item.title)
    _save()


def meetings(scope, upcoming: bool | None = None, now: datetime | None = None, limit: int = 100):
    """Meetings at or above the user's regions (they may attend) and in their subtrees."""
    q = (select(Meeting).options(joinedload(Meeting.venue), joinedload(Meeting.region))
         .where(visible_meeting_clause(scope)))
    now = now or utcnow()
    if upcoming is True:
        q = q.where(Meeting.status != "ended").order_by(Meeting.starts_at)
    elif upcoming is False:
        q = q.where(Meeting.status == "ended").order_by(Meeting.starts_at.desc())
    else:
        q = q.order_by(Meeting.starts_at.desc())
    return list(db.session.scalars(q.limit(limit)))


def visible_meeting_clause(scope, column=None):
    """A meeting is visible in the user's subtrees, and at any ancestor of their posts (a 邻长
    sees the village meeting their households go to)."""
    from sqlalchemy import or_

    column = column if column is not None else Meeting.path
    ancestors = set()
    for gr in scope.view_grants:
        parts = gr.path.strip("/").split("/") if gr.path != "/" else []
        ancestors.update("/" + "/".join(parts[:i]) + "/" for i in range(1, len(parts)))
    clause = scope.region_clause(column)
    return or_(clause, column.in_(sorted(ancestors))) if ancestors else clause


def can_see_meeting(scope, path: str) -> bool:
    return scope.can_view(path) or any(gr.path.startswith(path) for gr in scope.view_grants)


# -- check-in ------------------------------------------------------------------------------------
def entitled_households(meeting: Meeting, q: str = "", limit: int = 30):
    """Households of the meeting's region matching a name / address search, with their
    attendance (or None), present ones last so the chair sees who is still to come."""
    stmt = (select(Household, Attendance, Region.name)
            .join(Region, Household.neighborhood_id == Region.id)
            .outerjoin(Attendance, (Attendance.household_id == Household.id)
                       & (Attendance.meeting_id == meeting.id))
            .where(path_range(Region.path, meeting.path)))
    q = (q or "").strip()[:40]
    if q:
        like = f"%{q}%"
        stmt = stmt.where((Household.head_name.like(like)) | (Household.address.like(like))
                          | (Region.name.like(like)))
    stmt = stmt.order_by(Attendance.id.is_not(None), Region.path, Household.address,
                         Household.id).limit(limit)
    return db.session.execute(stmt).all()


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def check_in(actor, scope, meeting: Meeting, household: Household, representative: str = "",
             now: datetime | None = None) -> tuple[Attendance, bool]:
    """Check a household in; returns (attendance, created). Checking in twice is harmless."""
    _need(can_chair(scope, meeting))
    if meeting.status != "open":
        raise ServiceError("会议开始后才能签到。" if meeting.status == "planned"
                           else "会议已结束，不能再签到。")
    hood = db.session.get(Region, household.neighborhood_id)
    if not hood.path.startswith(meeting.path):
        raise ServiceError("这户不在本次会议的参会范围内。")
    existing = db.session.scalar(select(Attendance).where(
        Attendance.meeting_id == meeting.id, Attendance.household_id == household.id))
    if existing is not None:
        return existing, False
    att = Attendance(meeting_id=meeting.id, household_id=household.id,
                     representative=clean_text(representative, "户代表姓名", 40),
                     checked_in_at=now or utcnow(), checked_in_by_id=actor.id, code=_new_code())
    try:
        with db.session.begin_nested():
            db.session.add(att)
    except IntegrityError:  # the same household checked in from another phone at once
        existing = db.session.scalar(select(Attendance).where(
            Attendance.meeting_id == meeting.id, Attendance.household_id == household.id))
        if existing is None:
            raise
        return existing, False
    record(actor, "meeting.check_in", att, hood.path, meeting=meeting.title,
           household=household.id)
    return att, True


def undo_check_in(actor, scope, meeting: Meeting, household_id: int) -> None:
    _need(can_chair(scope, meeting))
    if meeting.status != "open":
        raise ServiceError("会议不在进行中。")
    att = db.session.scalar(select(Attendance).where(
        Attendance.meeting_id == meeting.id, Attendance.household_id == household_id))
    if att is None:
        raise ServiceError("这户尚未签到。")
    voted = db.session.scalar(select(func.count(Vote.id)).join(AgendaItem).where(
        AgendaItem.meeting_id == meeting.id, Vote.household_id == household_id))
    if voted:
        raise ServiceError("这户已经投票，不能撤销签到。")
    if db.session.scalar(select(func.count(AgendaItem.id)).where(
            AgendaItem.meeting_id == meeting.id, AgendaItem.status == "voting",
            AgendaItem.vote_mode == "hands")):
        raise ServiceError("举手表决进行中，不能撤销签到。")
    record(actor, "meeting.undo_check_in", att, meeting.path, meeting=meeting.title,
           household=household_id)
    db.session.delete(att)
    db.session.flush()


# -- votes ---------------------------------------------------------------------------------------
def open_vote(actor, scope, item: AgendaItem, now: datetime | None = None) -> None:
    meeting = meeting_of(item)
    _need(meeting is not None and can_chair(scope, meeting))
    if meeting.status != "open":
        raise ServiceError("会议开始后才能表决。")
    if item.status != "scheduled":
        raise ServiceError(f"“{item.status_label}”的议题不能开始表决。")
    item.status, item.vote_opened_at = "voting", now or utcnow()
    record(actor, "vote.open", item, item.path, title=item.title, rule=RULES[item.rule],
           mode=VOTE_MODES[item.vote_mode])
    _save()


def _lock(item: AgendaItem) -> None:
    """Reload the item under a row lock (PostgreSQL; SQLite serialises writers anyway)."""
    # OF agenda_items: the item may come with joined (outer) eager loads, which PostgreSQL
    # refuses to lock
    db.session.refresh(item, with_for_update={"of": AgendaItem})


def _votable(status: str) -> None:
    if status == "voting":
        return
    if status in ("proposed", "scheduled"):
        raise ServiceError("表决尚未开始。")
    raise ServiceError("表决已结束。")


def cast_vote(item: AgendaItem, household_id: int, choice: str, *, actor=None,
              now: datetime | None = None) -> Vote:
    """One household's vote on an item open for a household vote. Refused before the vote
    opens and after it closes, for a household not checked in, and for a second vote — the
    last by the unique constraint, so two requests arriving at once still make one vote."""
    # The item's row under a share lock: a close (which takes it for update before counting)
    # waits for votes in flight, and a vote after the close sees the closed status.
    _votable(db.session.scalar(select(AgendaItem.status).where(AgendaItem.id == item.id)
                               .with_for_update(read=True)))
    if item.vote_mode != "household":
        raise ServiceError("本议题为举手表决，由主持人录入票数。")
    if choice not in CHOICES:
        raise ServiceError("请选择赞成、反对或弃权。")
    present = db.session.scalar(select(Attendance.id).where(
        Attendance.meeting_id == item.meeting_id, Attendance.household_id == household_id))
    if present is None:
        raise ServiceError("这户未在本次会议签到，不能投票。")
    vote = Vote(item_id=item.id, household_id=household_id, choice=choice,
                cast_at=now or utcnow(), recorded_by_id=getattr(actor, "id", None))
    try:
        with db.session.begin_nested():
            db.session.add(vote)
    except IntegrityError:
        earlier = db.session.scalar(select(Vote).where(Vote.item_id == item.id,
                                                       Vote.household_id == household_id))
        label = f"（{earlier.choice_label}）" if earlier else ""
        raise ServiceError(f"这户已经投过票{label}，每户只能投一次。") from None
    record(actor, "vote.cast", vote, item.path, item=item.id, household=household_id,
           by="chair" if actor is not None else "code")
    return vote


def attendance_by_code(code: str) -> Attendance | None:
    """The attendance a resident's code belongs to, while its meeting is open."""
    code = "".join((code or "").split()).upper()
    if len(code) != CODE_LENGTH:
        return None
    return db.session.execute(
        select(Attendance).join(Meeting, Attendance.meeting_id == Meeting.id)
        .options(joinedload(Attendance.meeting), joinedload(Attendance.household))
        .where(Attendance.code == code, Meeting.status == "open")).scalar_one_or_none()


def set_hands(actor, scope, item: AgendaItem, yes: int, no: int, abstain: int) -> None:
    """Show of hands: the chair enters the counts; together they cannot exceed those present."""
    meeting = meeting_of(item)
    _need(meeting is not None and can_chair(scope, meeting))
    _lock(item)
    _votable(item.status)
    if item.vote_mode != "hands":
        raise ServiceError("本议题为按户表决。")
    _check_counts(yes, no, abstain, present_count(meeting.id))
    item.hands_yes, item.hands_no, item.hands_abstain = yes, no, abstain
    item.hands_entered = True
    record(actor, "vote.hands", item, item.path, title=item.title, yes=yes, no=no,
           abstain=abstain)
    _save()


def _check_counts(yes, no, abstain, present: int) -> None:
    for n in (yes, no, abstain):
        if not isinstance(n, int) or n < 0:
            raise ServiceError("票数应为不小于 0 的整数。")
    if yes + no + abstain > present:
        raise ServiceError(f"赞成、反对、弃权合计 {yes + no + abstain}，超过到会 {present} 户。")


@dataclass
class Tally:
    yes: int
    no: int
    abstain: int
    present: int
    entitled: int

    @property
    def voted(self) -> int:
        return self.yes + self.no + self.abstain

    @property
    def not_voted(self) -> int:
        return max(0, self.present - self.voted)


def tally(item: AgendaItem) -> Tally:
    """Counts now: the locked result once decided; otherwise the votes (or hands) so far."""
    meeting = meeting_of(item)
    if item.decided and item.result_yes is not None:
        return Tally(item.result_yes, item.result_no, item.result_abstain, item.result_present,
                     item.result_entitled)
    present = present_count(item.meeting_id) if item.meeting_id else 0
    entitled = entitled_of(meeting) if meeting else 0
    if item.vote_mode == "hands":
        return Tally(item.hands_yes, item.hands_no, item.hands_abstain, present, entitled)
    counts = dict(db.session.execute(select(Vote.choice, func.count(Vote.id))
                                     .where(Vote.item_id == item.id).group_by(Vote.choice)).all())
    return Tally(counts.get("yes", 0), counts.get("no", 0), counts.get("abstain", 0), present,
                 entitled)


def quorum_state(meeting: Meeting, items: list[AgendaItem], present: int) -> dict | None:
    """For the chair's screen: the strictest quorum among the agenda's rules, or None."""
    entitled = entitled_of(meeting)
    needs = [n for n in (quorum_needed(i.rule, entitled) for i in items) if n is not None]
    if not needs:
        return None
    need = max(needs)
    return {"need": need, "met": present >= need, "short": max(0, need - present),
            "entitled": entitled}


def close_vote(actor, scope, item: AgendaItem, now: datetime | None = None) -> str:
    """Close the vote: compute the result with the item's rule and lock it."""
    meeting = meeting_of(item)
    _need(meeting is not None and can_chair(scope, meeting))
    _lock(item)
    if item.status != "voting":
        raise ServiceError("表决不在进行中。")
    if item.vote_mode == "hands" and not item.hands_entered:
        raise ServiceError("请先录入举手表决的票数。")
    t = tally(item)
    result = outcome(item.rule, t.yes, t.no, t.abstain, t.present, t.entitled)
    item.result_yes, item.result_no, item.result_abstain = t.yes, t.no, t.abstain
    item.result_present, item.result_entitled = t.present, t.entitled
    item.status, item.vote_closed_at = result, now or utcnow()
    record(actor, "vote.close", item, item.path, title=item.title,
           result=describe_result(t.yes, t.no, t.abstain, result), present=t.present,
           entitled=t.entitled)
    _save()
    return result


def correct_result(actor, scope, item: AgendaItem, yes: int, no: int, abstain: int,
                   reason: str, now: datetime | None = None) -> str:
    """Correct a locked result (a miscount found later): staff only, with a reason; the result is
    recomputed with the item's rule against the attendance recorded at the close."""
    _need(can_manage(scope, item.path), "更正表决结果须由村(社区)或镇干部办理。")
    _lock(item)
    if item.status not in ("passed", "rejected", "no_quorum"):
        raise ServiceError("只有已表决、尚未落实的议题可以更正结果。")
    reason = clean_text(reason, "更正理由", 300, 4, "reason")
    _check_counts(yes, no, abstain, item.result_present)
    before = describe_result(item.result_yes, item.result_no, item.result_abstain, item.status)
    result = outcome(item.rule, yes, no, abstain, item.result_present, item.result_entitled)
    after = describe_result(yes, no, abstain, result)
    if after == before:
        raise ServiceError("更正后的结果与原结果相同。")
    item.result_yes, item.result_no, item.result_abstain, item.status = yes, no, abstain, result
    db.session.add(ResultCorrection(item_id=item.id, at=now or utcnow(), user_id=actor.id,
                                    reason=reason, before=before, after=after))
    record(actor, "vote.correct", item, item.path, title=item.title, before=before, after=after,
           reason=reason)
    _save()
    return result


def corrections(item_id: int) -> list[ResultCorrection]:
    return list(db.session.scalars(
        select(ResultCorrection).options(joinedload(ResultCorrection.user))
        .where(ResultCorrection.item_id == item_id).order_by(ResultCorrection.at)))


def votes_of(item_id: int) -> dict[int, Vote]:
    return {v.household_id: v for v in db.session.scalars(
        select(Vote).where(Vote.item_id == item_id))}


# -- answers ("有议必有答") -------------------------------------------------------------------------
def assign_answer(actor, scope, item: AgendaItem, owner_id: int, due: date,
                  today: date | None = None) -> None:
    """A passed item gets an owner and a due date: 落实中."""
    _need(can_manage(scope, item.path) or (meeting_of(item) is not None
                                          and can_chair(scope, meeting_of(item))))
    if item.status not in ("passed", "implementing"):
        raise ServiceError("只有通过的议题需要落实答复。")
    if owner_id not in {u.id for u in owner_choices(item)}:
        raise ServiceError("请选择落实负责人。", "owner_id")
    if not isinstance(due, date):
        raise ServiceError("请填写答复期限。", "answer_due")
    if due < (today or local_today()):
        raise ServiceError("答复期限不能早于今天。", "answer_due")
    item.owner_id, item.answer_due, item.status = owner_id, due, "implementing"
    record(actor, "agenda.assign", item, item.path, title=item.title, owner=owner_id, due=due)
    _save()


def answer_item(actor, scope, item: AgendaItem, text: str, now: datetime | None = None) -> None:
    if item.status != "implementing":
        raise ServiceError("这个议题不在落实中。")
    _need(actor.id == item.owner_id or can_manage(scope, item.path),
          "由落实负责人或干部填写答复。")
    item.answer = clean_text(text, "答复内容", 2000, 4, "answer")
    item.answered_at, item.status = now or utcnow(), "answered"
    record(actor, "agenda.answer", item, item.path, title=item.title)
    _save()


def owner_choices(item: AgendaItem):
    """People who may be made responsible: holders of an active post over the item's region or
    in its subtree, within the village (or the town for a town-level item)."""
    from portal.blueprints.auth.models import User
    from portal.blueprints.regions.models import Post

    parts = item.path.strip("/").split("/")
    top = "/" + "/".join(parts[:2]) + "/"
    ancestors = ["/" + "/".join(parts[:i]) + "/" for i in range(1, len(parts) + 1)]
    return list(db.session.scalars(
        select(User).join(Post, Post.user_id == User.id).join(Region, Post.region_id == Region.id)
        .where(Post.ended_at.is_(None),
               path_range(Region.path, top) | Region.path.in_(ancestors))
        .distinct().order_by(User.name)))


def overdue_answers(scope, today: date | None = None, limit: int = 100) -> list[AgendaItem]:
    today = today or local_today()
    return list(db.session.scalars(
        select(AgendaItem).options(joinedload(AgendaItem.owner))
        .where(scope.region_clause(AgendaItem.path), AgendaItem.status == "implementing",
               AgendaItem.answer_due < today)
        .order_by(AgendaItem.answer_due).limit(limit)))


def items(scope, status: str | None = None, limit: int = 100) -> list[AgendaItem]:
    q = (select(AgendaItem).options(joinedload(AgendaItem.category),
                                    joinedload(AgendaItem.region), joinedload(AgendaItem.meeting))
         .where(scope.region_clause(AgendaItem.path)))
    if status == "waiting":  # off-list matters staff must decide
        q = q.where(AgendaItem.status == "proposed", AgendaItem.category_id.is_(None))
    elif status:
        q = q.where(AgendaItem.status == status)
    return list(db.session.scalars(q.order_by(AgendaItem.updated_at.desc()).limit(limit)))


def schedulable(meeting: Meeting) -> list[AgendaItem]:
    """Items that can go on this meeting's agenda: proposed, in its region, with a category."""
    return list(db.session.scalars(
        select(AgendaItem).options(joinedload(AgendaItem.category))
        .where(path_range(AgendaItem.path, meeting.path), AgendaItem.status == "proposed",
               AgendaItem.category_id.is_not(None))
        .order_by(AgendaItem.created_at).limit(100)))


def load_item(item_id: int) -> AgendaItem | None:
    return db.session.execute(
        select(AgendaItem).options(joinedload(AgendaItem.category), joinedload(AgendaItem.region),
                                   joinedload(AgendaItem.meeting), joinedload(AgendaItem.owner),
                                   joinedload(AgendaItem.raised_by))
        .where(AgendaItem.id == item_id)).unique().scalar_one_or_none()


def load_meeting(meeting_id: int) -> Meeting | None:
    return db.session.execute(
        select(Meeting).options(joinedload(Meeting.venue), joinedload(Meeting.region),
                                joinedload(Meeting.convener))
        .where(Meeting.id == meeting_id)).unique().scalar_one_or_none()


def today_local() -> date:
    return local_today()
