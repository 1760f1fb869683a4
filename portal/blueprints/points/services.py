"""Rules for 积分: pricing an event by the rule version in force, daily and monthly caps, awards
written in the same transaction as the record that earns them, reversals, 六不得 breaches,
balances, the public ranking, and the rewards store.

Awards are called from the other domains' services (a duty log, a request answered in time or
solved at 邻) *before* their caller commits, so a record and its points are saved together or not
at all; an award never refuses the record — no rule, or a cap reached, simply pays nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    and_,
    bindparam,
    case,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased, joinedload

from portal.audit import record
from portal.blueprints.duties.models import ChecklistItem
from portal.blueprints.points.models import (
    DEFAULT_THRESHOLDS,
    EVENT_ITEM_KIND,
    EVENTS,
    GRADES,
    RESULTS,
    Breach,
    PointsEntry,
    PointsRule,
    Redemption,
    Review,
    ReviewSettings,
    Reward,
)
from portal.clock import local_midnight_utc, to_local, utcnow
from portal.errors import ServiceError, clean_text
from portal.extensions import db
from portal.scope import town_id_of

#: Defaults for a new town (this project's, editable by town staff): (event, points, daily cap,
#: monthly cap). Duty logs are priced per 七员 item, breaches per 六不得 item.
DEFAULT_RULES = (
    ("duty_log", 1, 5, 60),
    ("request_on_time", 2, 10, None),
    ("request_at_neighborhood", 3, 15, None),
    ("agenda_raise", 3, None, 9),
    ("agenda_attend", 2, None, None),
    ("commendation", 20, None, None),
    ("breach", -10, None, None),
)
#: Rules installed before any event can happen.
DEFAULT_EFFECTIVE = date(2020, 1, 1)
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


# -- rules ---------------------------------------------------------------------------------------
def install_points_defaults(town) -> None:
    """The default rules of a new town (also run by migration 0004 for existing towns)."""
    items = {kind: [i.id for i in db.session.scalars(select(ChecklistItem).where(
        ChecklistItem.town_id == town.id, ChecklistItem.kind == kind))]
        for kind in ("duty", "negative")}
    for event, points, daily, monthly in DEFAULT_RULES:
        kind = EVENT_ITEM_KIND.get(event)
        for item_id in (items[kind] if kind else [None]):
            db.session.add(PointsRule(town_id=town.id, event=event, item_id=item_id,
                                      points=points, daily_cap=daily, monthly_cap=monthly,
                                      effective_from=DEFAULT_EFFECTIVE))
    db.session.flush()


def rule_for(town_id: int, event: str, item_id: int | None, on: date) -> PointsRule | None:
    """The version in force on local date ``on``; None when there is none or it is switched
    off."""
    rule = db.session.scalar(
        select(PointsRule).where(PointsRule.town_id == town_id, PointsRule.event == event,
                                 PointsRule.item_id.is_(None) if item_id is None
                                 else PointsRule.item_id == item_id,
                                 PointsRule.effective_from <= on)
        .order_by(PointsRule.effective_from.desc(), PointsRule.id.desc()).limit(1))
    return rule if rule is not None and rule.active else None


def change_rule(actor, town, event: str, item_id: int | None, *, points: int,
                daily_cap: int | None, monthly_cap: int | None, effective_from: date,
                active: bool = True, today: date | None = None) -> PointsRule:
    """A new version of a rule from ``effective_from`` on (today or later: the past is not
    repriced)."""
    if event not in EVENTS:
        raise ServiceError("未知的积分事项。", "event")
    kind = EVENT_ITEM_KIND.get(event)
    if kind:
        item = db.session.get(ChecklistItem, item_id) if item_id else None
        if item is None or item.kind != kind or item.town_id != town.id:
            raise ServiceError("请选择对应的清单条目。", "item_id")
    elif item_id is not None:
        raise ServiceError("这个事项不按清单条目计分。", "item_id")
    if not isinstance(points, int) or points == 0 or abs(points) > 1000:
        raise ServiceError("分值应为 -1000 到 1000 之间的非零整数。", "points")
    if (event == "breach") != (points < 0):
        raise ServiceError("负面清单扣分填负数，其他事项加分填正数。", "points")
    for cap, name in ((daily_cap, "daily_cap"), (monthly_cap, "monthly_cap")):
        if cap is not None and (not isinstance(cap, int) or cap <= 0):
            raise ServiceError("上限应为正整数，不设上限请留空。", name)
    today = today or to_local(utcnow()).date()
    if effective_from < today:
        raise ServiceError("生效日期不能早于今天：已发生的积分不重算。", "effective_from")
    rule = PointsRule(town_id=town.id, event=event, item_id=item_id, points=points,
                      daily_cap=daily_cap, monthly_cap=monthly_cap,
                      effective_from=effective_from, active=active,
                      created_by_id=getattr(actor, "id", None))
    db.session.add(rule)
    record(actor, "points_rule.change", rule, town.path, event=EVENTS[event], points=points,
           daily_cap=daily_cap, monthly_cap=monthly_cap, effective_from=effective_from,
           active=active)
    return rule


def current_rules(town_id: int, on: date) -> list[PointsRule]:
    """The version of every rule in force on ``on`` (and inactive ones, to show them)."""
    latest = (select(PointsRule.event, PointsRule.item_id,
                     func.max(PointsRule.effective_from).label("since"))
              .where(PointsRule.town_id == town_id, PointsRule.effective_from <= on)
              .group_by(PointsRule.event, PointsRule.item_id).subquery())
    rows = db.session.scalars(
        select(PointsRule).join(latest, and_(
            PointsRule.event == latest.c.event,
            func.coalesce(PointsRule.item_id, 0) == func.coalesce(latest.c.item_id, 0),
            PointsRule.effective_from == latest.c.since))
        .where(PointsRule.town_id == town_id).order_by(PointsRule.event, PointsRule.item_id,
                                                       PointsRule.id.desc()))
    seen, out = set(), []
    for r in rows:
        if (r.event, r.item_id) not in seen:
            seen.add((r.event, r.item_id))
            out.append(r)
    return out


# -- the ledger ----------------------------------------------------------------------------------
def day_bounds(at: datetime) -> tuple[datetime, datetime]:
    day = to_local(at).date()
    return local_midnight_utc(day), local_midnight_utc(day + timedelta(days=1))


def month_bounds(at: datetime) -> tuple[datetime, datetime]:
    first = to_local(at).date().replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return local_midnight_utc(first), local_midnight_utc(following)


def _least(*args):
    """The smallest of several values (SQLite spells it min(), PostgreSQL least())."""
    name = db.session.get_bind().dialect.name
    return (func.least if name == "postgresql" else func.min)(*args)


def _insert():
    """INSERT that skips a row the unique constraints already hold (a record paid twice)."""
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(PointsEntry)


#: award()'s statement, built once per dialect and shape (with or without a checklist item):
#: building it anew took ~10 ms of Python a call (the duty-log save page; the demo seed pays
#: ~2,000 logs); the values go in as bound parameters.
_AWARD_STATEMENTS: dict[tuple[str, bool], object] = {}


def _award_statement(with_item: bool):
    key = (db.session.get_bind().dialect.name, with_item)
    if key in _AWARD_STATEMENTS:
        return _AWARD_STATEMENTS[key]
    family = and_(PointsRule.town_id == bindparam("town_id"),
                  PointsRule.event == bindparam("event"),
                  PointsRule.item_id == bindparam("item_id") if with_item
                  else PointsRule.item_id.is_(None))
    version = (select(PointsRule.id, PointsRule.points, PointsRule.daily_cap,
                      PointsRule.monthly_cap, PointsRule.active)
               .where(family, PointsRule.effective_from <= bindparam("on"))
               .order_by(PointsRule.effective_from.desc(), PointsRule.id.desc())
               .limit(1).subquery("version"))
    reversal = aliased(PointsEntry)

    def used(start: str, end: str):
        return (select(func.coalesce(func.sum(func.abs(PointsEntry.delta)), 0))
                .where(PointsEntry.user_id == bindparam("user_id"), PointsEntry.kind == "award",
                       PointsEntry.rule_id.in_(select(PointsRule.id).where(family)),
                       PointsEntry.at >= bindparam(start), PointsEntry.at < bindparam(end),
                       ~select(reversal.id).where(reversal.reverses_id == PointsEntry.id)
                       .exists())
                .scalar_subquery())

    unlimited = 1_000_000
    size = func.abs(version.c.points)
    amount = _least(
        size,
        case((version.c.daily_cap.is_(None), unlimited),
             else_=version.c.daily_cap - used("day_start", "day_end")),
        case((version.c.monthly_cap.is_(None), unlimited),
             else_=version.c.monthly_cap - used("month_start", "month_end")))
    delta = case((version.c.points < 0, -amount), else_=amount)
    reason = case((amount < size, "已达上限，本次按剩余分值计"), else_=bindparam("note", type_=String))
    columns = ("user_id", "town_id", "path", "kind", "delta", "rule_id", "source_type",
               "source_id", "reason", "at", "created_at")
    # typed: in a SELECT list nothing tells a parameter its type (SQLite stores datetimes as
    # text, and must get them in the column's format)
    rows = select(bindparam("user_id", type_=Integer), bindparam("town_id", type_=Integer),
                  bindparam("path", type_=String), literal("award"), delta, version.c.id,
                  bindparam("source_type", type_=String), bindparam("source_id", type_=Integer),
                  reason, bindparam("at", type_=DateTime),
                  bindparam("created_at", type_=DateTime)
                  ).where(version.c.active.is_(True), amount > 0)
    statement = (_insert().from_select(columns, rows).on_conflict_do_nothing()
                 .returning(PointsEntry.id))
    _AWARD_STATEMENTS[key] = statement
    return statement


def award(user_id: int, event: str, source_type: str, source_id: int, *, at: datetime,
          path: str, item_id: int | None = None, note: str = "") -> int | None:
    """Pay ``user_id`` for an event by the rule version in force on its local date, within the
    rule's daily and monthly caps (a capped award pays what is left, or nothing). A record
    already paid by this rule is not paid again. Returns the new entry's id, or None when
    nothing was paid.

    One statement (INSERT … SELECT): the version, what the caps leave and the row are worked
    out by the database, so the page that records the event stays within its query budget."""
    day_start, day_end = day_bounds(at)
    month_start, month_end = month_bounds(at)
    values = dict(user_id=user_id, town_id=town_id_of(path), event=event,
                  on=to_local(at).date(), day_start=day_start, day_end=day_end,
                  month_start=month_start, month_end=month_end, note=note[:200], path=path,
                  source_type=source_type, source_id=source_id, at=at, created_at=utcnow())
    if item_id is not None:
        values["item_id"] = item_id
    # "raw": run the INSERT … SELECT as written (parameters given to an ORM insert would
    # otherwise make it a bulk insert of the parameter rows)
    return db.session.execute(_award_statement(item_id is not None), values,
                              execution_options={"dml_strategy": "raw"}).scalar_one_or_none()


def reverse(entry: PointsEntry, reason: str, operator=None, now: datetime | None = None
            ) -> PointsEntry:
    """Cancel an entry with an opposite one (once: the database refuses a second reversal)."""
    reason = (reason or "").strip()
    if len(reason) < 2:
        raise ServiceError("请填写冲正理由。", "reason")
    if entry.kind == "reversal":
        raise ServiceError("冲正记录不能再冲正。")
    if entry.kind != "award":
        # a spend goes with a voucher and a ticket taken from stock: giving the points back
        # alone would leave both
        raise ServiceError("兑换扣除的积分不能冲正。")
    back = PointsEntry(user_id=entry.user_id, town_id=entry.town_id, path=entry.path,
                       kind="reversal", delta=-entry.delta, rule_id=entry.rule_id,
                       source_type="entry", source_id=entry.id, reverses_id=entry.id,
                       operator_id=getattr(operator, "id", None), reason=reason[:200],
                       # dated like the entry it cancels, so a period's totals net out;
                       # created_at says when it was written
                       at=entry.at, created_at=now or utcnow())
    try:
        with db.session.begin_nested():
            db.session.add(back)
    except IntegrityError:
        raise ServiceError("这条积分已经冲正过了。") from None
    record(operator, "points.reverse", back, entry.path, entry=entry.id, delta=back.delta,
           reason=reason)
    return back


def reverse_source(source_type: str, source_id: int, reason: str, operator=None,
                   now: datetime | None = None, event: str | None = None) -> int:
    """Take back the awards a record earned (it was voided, declined, reopened). Returns how
    many entries were reversed."""
    reversal = aliased(PointsEntry)
    q = select(PointsEntry).where(
        PointsEntry.source_type == source_type, PointsEntry.source_id == source_id,
        PointsEntry.kind == "award",
        ~select(reversal.id).where(reversal.reverses_id == PointsEntry.id).exists())
    if event is not None:
        q = q.join(PointsRule, PointsEntry.rule_id == PointsRule.id).where(
            PointsRule.event == event)
    entries = list(db.session.scalars(q.order_by(PointsEntry.id)))
    for entry in entries:
        reverse(entry, reason, operator, now)
    return len(entries)


def balance(user_id: int) -> int:
    return db.session.scalar(select(func.coalesce(func.sum(PointsEntry.delta), 0))
                             .where(PointsEntry.user_id == user_id)) or 0


# -- hooks from the other domains -----------------------------------------------------------------
def on_duty_log(log) -> int | None:
    from portal.blueprints.regions.models import Region

    hood = db.session.get(Region, log.neighborhood_id)
    return award(log.user_id, "duty_log", "duty_log", log.id, at=log.occurred_at,
                 path=hood.path, item_id=log.duty_item_id)


def on_request_response(actor, req, now: datetime) -> int | None:
    """The first response (响应, or closing straight away) at a level whose deadline had not
    passed: 按时响应."""
    if req.missed & (1 << req.level):
        return None
    return award(actor.id, "request_on_time", "request", req.id, at=now, path=req.path)


def on_request_closed(actor, req, now: datetime) -> int | None:
    """Closed at 邻: 微事不出邻."""
    if req.closed_level != 0:
        return None
    return award(actor.id, "request_at_neighborhood", "request", req.id, at=now, path=req.path)


def on_request_reopened(req, now: datetime) -> int:
    """A reopened request was not solved: the 邻-level award goes back."""
    return reverse_source("request", req.id, "居民重新打开了诉求", None, now,
                          event="request_at_neighborhood")


def on_agenda_raise(item, now: datetime) -> int | None:
    """An agenda item that goes to a meeting pays whoever raised it: when raised from the
    议事清单, or when staff accept a matter raised outside it."""
    return award(item.raised_by_id, "agenda_raise", "agenda_item", item.id, at=now,
                 path=item.path)


def on_agenda_declined(actor, item, now: datetime) -> int:
    """不予上会: whatever the item earned goes back (an off-list item earned nothing yet)."""
    return reverse_source("agenda_item", item.id, "议题不予上会", actor, now)


def on_meeting_end(meeting, now: datetime) -> list[int]:
    """A meeting that households attended pays its convener and everyone who checked
    households in, once each (ending it again pays nobody twice: one award per person and
    meeting)."""
    from portal.blueprints.agenda.models import Attendance

    people = set(db.session.scalars(select(Attendance.checked_in_by_id).where(
        Attendance.meeting_id == meeting.id).distinct()))
    if not people:
        return []
    people.add(meeting.convener_id)
    paid = (award(user_id, "agenda_attend", "meeting", meeting.id, at=now, path=meeting.path)
            for user_id in sorted(people))
    return [entry_id for entry_id in paid if entry_id is not None]


# -- breaches (六不得) -------------------------------------------------------------------------------
def record_breach(actor, scope, chief_post, item_id: int, occurred_on: date, evidence: str,
                  today: date | None = None) -> Breach:
    """A supervisor records a breach against a 邻长 (their post), deducting by the rule."""
    from portal.blueprints.regions.models import Region

    region = db.session.get(Region, chief_post.region_id)
    if chief_post.role != "neighbor_chief" or chief_post.ended_at is not None:
        raise ServiceError("只能对在岗邻长记录负面清单。")
    if not scope.allows("supervise", region.path):
        raise PermissionError("由组长、片长或村(社区)、镇干部记录。")
    item = db.session.get(ChecklistItem, item_id)
    if item is None or item.kind != "negative" or item.town_id != region.town_id:
        raise ServiceError("请选择负面清单（六不得）中的一项。", "item_id")
    today = today or to_local(utcnow()).date()
    if not isinstance(occurred_on, date) or occurred_on > today:
        raise ServiceError("发生日期不能晚于今天。", "occurred_on")
    evidence = (evidence or "").strip()
    if len(evidence) < 4:
        raise ServiceError("请写明事实和证据（至少 4 个字）。", "evidence")
    breach = Breach(user_id=chief_post.user_id, path=region.path, item_id=item.id,
                    occurred_on=occurred_on, evidence=evidence[:2000], recorded_by_id=actor.id)
    db.session.add(breach)
    db.session.flush()
    record(actor, "breach.create", breach, region.path, item=item.title,
           occurred_on=occurred_on)
    award(breach.user_id, "breach", "breach", breach.id,
          at=local_midnight_utc(occurred_on) + timedelta(hours=12), path=region.path,
          item_id=item.id, note=item.title)
    return breach


def answer_breach(actor, breach: Breach, text: str, now: datetime | None = None) -> None:
    if actor.id != breach.user_id:
        raise PermissionError("只有本人可以说明。")
    text = (text or "").strip()
    if len(text) < 2:
        raise ServiceError("请填写说明。", "response")
    breach.response, breach.responded_at = text[:2000], now or utcnow()
    record(actor, "breach.answer", breach, breach.path)


def withdraw_breach(actor, scope, breach: Breach, reason: str, now: datetime | None = None
                    ) -> None:
    if not scope.allows("manage", breach.path):
        raise PermissionError("由村(社区)或镇干部撤销。")
    if breach.withdrawn_at is not None:
        raise ServiceError("这条记录已经撤销。")
    reason = (reason or "").strip()
    if len(reason) < 2:
        raise ServiceError("请填写撤销理由。", "reason")
    breach.withdrawn_at, breach.withdrawn_reason = now or utcnow(), reason[:200]
    reverse_source("breach", breach.id, f"负面清单记录撤销：{reason}", actor, now)
    record(actor, "breach.withdraw", breach, breach.path, reason=reason)


# -- the public ranking (公示) ----------------------------------------------------------------------
@dataclass
class RankRow:
    rank: int
    user_id: int
    name: str
    total: int
    by_event: dict[str, int]


def ranking(path: str, start: datetime, end: datetime) -> list[RankRow]:
    """Points earned (awards and their reversals; not spending) under ``path`` in [start, end),
    per person, broken down by event; equal totals share a rank (1, 2, 2, 4)."""
    from portal.blueprints.auth.models import User
    from portal.scope import path_range

    original = aliased(PointsEntry)
    event = func.coalesce(PointsRule.event, "other")
    rows = db.session.execute(
        select(PointsEntry.user_id, User.name, event, func.sum(PointsEntry.delta))
        .join(User, User.id == PointsEntry.user_id)
        .outerjoin(original, original.id == PointsEntry.reverses_id)
        .outerjoin(PointsRule, PointsRule.id == PointsEntry.rule_id)
        .where(path_range(PointsEntry.path, path), PointsEntry.kind.in_(("award", "reversal")),
               PointsEntry.at >= start, PointsEntry.at < end)
        .group_by(PointsEntry.user_id, User.name, event)).all()
    people: dict[int, RankRow] = {}
    for user_id, name, ev, total in rows:
        row = people.setdefault(user_id, RankRow(0, user_id, name, 0, {}))
        row.by_event[ev] = row.by_event.get(ev, 0) + int(total)
        row.total += int(total)
    ordered = sorted(people.values(), key=lambda r: (-r.total, r.name, r.user_id))
    for i, row in enumerate(ordered):
        row.rank = ordered[i - 1].rank if i and ordered[i - 1].total == row.total else i + 1
    return ordered


# -- rewards --------------------------------------------------------------------------------------
def _code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))


def redeem(actor, reward_id: int, path: str, today: date | None = None) -> Redemption:
    """Spend points on a reward. Stock and balance are checked where they change: the stock by
    one conditional UPDATE (two people taking the last ticket: one gets it), the balance under
    a lock on the person's row (two redemptions at once cannot take it below zero)."""
    from portal.blueprints.auth.models import User

    today = today or to_local(utcnow()).date()
    reward = db.session.get(Reward, reward_id)
    if reward is None or not reward.active or reward.town_id != town_id_of(path):
        raise ServiceError("没有这项奖励。")
    if not reward.valid_from <= today <= reward.valid_until:
        raise ServiceError("这项奖励不在兑换期内。")
    # serialise one person's spending
    db.session.execute(select(User.id).where(User.id == actor.id).with_for_update())
    if balance(actor.id) < reward.cost:
        raise ServiceError(f"积分不足：需要 {reward.cost} 分，您现有 {balance(actor.id)} 分。")
    taken = db.session.execute(
        update(Reward).where(Reward.id == reward.id, Reward.stock > 0)
        .values(stock=Reward.stock - 1).execution_options(synchronize_session=False)).rowcount
    if taken != 1:
        raise ServiceError("这项奖励已经兑完了。")
    redemption = Redemption(reward_id=reward.id, user_id=actor.id, path=path, cost=reward.cost,
                            code=_code())
    db.session.add(redemption)
    db.session.flush()
    db.session.add(PointsEntry(user_id=actor.id, town_id=reward.town_id, path=path,
                               kind="spend", delta=-reward.cost, source_type="redemption",
                               source_id=redemption.id, operator_id=actor.id,
                               reason=reward.name[:200], at=utcnow()))
    record(actor, "reward.redeem", redemption, path, reward=reward.name, cost=reward.cost)
    db.session.flush()
    db.session.expire(reward, ["stock"])
    return redemption


def mark_used(actor, scope, redemption: Redemption, now: datetime | None = None) -> None:
    if not scope.allows("manage", redemption.path):
        raise PermissionError("由村(社区)或镇干部核销。")
    if redemption.status != "issued":
        raise ServiceError("这张兑换券已经核销或作废。")
    redemption.status, redemption.used_at = "used", now or utcnow()
    redemption.used_by_id = actor.id
    record(actor, "reward.use", redemption, redemption.path, code=redemption.code)


def save_reward(actor, town, reward: Reward | None, data: dict) -> Reward:
    """Create or edit a reward of the store (town staff). ``data``: name, description, cost,
    stock, valid_from, valid_until, active, and when editing ``stock_seen``: the stock the
    editor was shown (people may redeem while the form is open)."""
    name = clean_text(data.get("name"), "名称", 60, minimum=2, field="name")
    description = clean_text(data.get("description"), "说明", 1000, field="description")
    cost, stock = data.get("cost"), data.get("stock")
    if not isinstance(cost, int) or not 0 < cost <= 100_000:
        raise ServiceError("所需积分应为 1 到 100000 之间的整数。", "cost")
    if not isinstance(stock, int) or not 0 <= stock <= 100_000:
        raise ServiceError("库存应为 0 到 100000 之间的整数。", "stock")
    valid_from, valid_until = data.get("valid_from"), data.get("valid_until")
    if not isinstance(valid_from, date):
        raise ServiceError("请填写开始兑换日期。", "valid_from")
    if not isinstance(valid_until, date) or valid_until < valid_from:
        raise ServiceError("截止日期不能早于开始日期。", "valid_until")
    values = dict(name=name, description=description, cost=cost, stock=stock,
                  valid_from=valid_from, valid_until=valid_until,
                  active=bool(data.get("active", True)))
    if reward is None:
        reward = Reward(town_id=town.id, **values)
        db.session.add(reward)
        db.session.flush()
        record(actor, "reward.create", reward, town.path, name=name, cost=cost, stock=stock)
        return reward
    seen = data.get("stock_seen")
    if seen is not None:
        # the editor changed the stock they saw: applied only if nobody redeemed meanwhile
        # (one conditional UPDATE), and left alone when they did not change it
        values.pop("stock")
        if stock != seen:
            done = db.session.execute(
                update(Reward).where(Reward.id == reward.id, Reward.stock == seen)
                .values(stock=stock).execution_options(synchronize_session=False)).rowcount
            db.session.expire(reward, ["stock"])
            if done != 1:
                raise ServiceError(f"刚才有人兑换，现在剩 {reward.stock} 份。请核对数量后再保存。",
                                   "stock")
    changes = {k: v for k, v in values.items() if getattr(reward, k) != v}
    for k, v in changes.items():
        setattr(reward, k, v)
    if seen is not None and stock != seen:
        changes["stock"] = stock
    if changes:
        record(actor, "reward.update", reward, town.path, **changes)
    return reward


def rewards(town_ids, *, available_on: date | None = None) -> list[Reward]:
    """The store of some towns (None: every town); only what can be redeemed on a day when
    ``available_on`` is given."""
    q = select(Reward)
    if town_ids is not None:
        q = q.where(Reward.town_id.in_(town_ids))
    if available_on is not None:
        q = q.where(Reward.active.is_(True), Reward.valid_from <= available_on,
                    Reward.valid_until >= available_on)
    return list(db.session.scalars(q.order_by(Reward.valid_until, Reward.cost, Reward.id)))


# -- 履职评议 ----------------------------------------------------------------------------------------
QUARTER_MONTHS = {1: 1, 2: 4, 3: 7, 4: 10}


def period_bounds(label: str) -> tuple[date, date]:
    """"2026Q3" → (2026-07-01, 2026-10-01); "2026" → the whole year. End is exclusive."""
    label = (label or "").strip().upper()
    try:
        if "Q" in label:
            year, quarter = label.split("Q")
            start = date(int(year), QUARTER_MONTHS[int(quarter)], 1)
            month = start.month + 3
            return start, date(start.year + (month > 12), (month - 1) % 12 + 1, 1)
        year = int(label)
        return date(year, 1, 1), date(year + 1, 1, 1)
    except (ValueError, KeyError):
        raise ServiceError("评议期应写成 2026Q3（季度）或 2026（全年）。", "period") from None


def quarter_of(day: date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def previous_quarter(day: date) -> str:
    return quarter_of(date(day.year, (day.month - 1) // 3 * 3 + 1, 1) - timedelta(days=1))


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def period_label(start: date, end: date) -> str:
    if (start.month, start.day) == (1, 1) and end == date(start.year + 1, 1, 1):
        return f"{start.year} 年度"
    if end == _next_month(start):
        return f"{start.year} 年 {start.month} 月"
    return f"{start.year} 年第 {(start.month - 1) // 3 + 1} 季度"


@dataclass(frozen=True)
class Period:
    """A month, a quarter or a year, as the ranking and the reviews are asked for."""

    #: "2026-11", "2026Q4" or "2026": what ``?period=`` carries.
    key: str
    start: date
    #: Exclusive.
    end: date

    @property
    def label(self) -> str:
        return period_label(self.start, self.end)

    @property
    def last(self) -> date:
        """The last day."""
        return self.end - timedelta(days=1)

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) as stored (naive UTC) datetimes: local midnights."""
        return local_midnight_utc(self.start), local_midnight_utc(self.end)


def month_period(year: int, month: int) -> Period:
    start = date(year, month, 1)
    return Period(f"{year}-{month:02d}", start, _next_month(start))


def quarter_or_year(label: str) -> Period:
    """"2026Q3" or "2026" (period_bounds' message when it is neither)."""
    start, end = period_bounds(label)
    return Period(quarter_of(start) if "Q" in label.upper() else str(start.year), start, end)


def review_settings(town_id: int) -> ReviewSettings:
    """The town's thresholds (the defaults, unsaved, until staff change them)."""
    found = db.session.get(ReviewSettings, town_id)
    return found or ReviewSettings(town_id=town_id, **DEFAULT_THRESHOLDS)


def save_review_settings(actor, town, data: dict) -> ReviewSettings:
    values = {}
    for key, label in (("excellent_min", "优秀"), ("competent_min", "称职"),
                       ("basic_min", "基本称职")):
        v = data.get(key)
        if not isinstance(v, int) or not 0 <= v <= 100:
            raise ServiceError(f"{label}分数线应为 0 到 100 之间的整数。", key)
        values[key] = v
    if not values["excellent_min"] > values["competent_min"] > values["basic_min"]:
        raise ServiceError("分数线应依次降低：优秀 > 称职 > 基本称职。", "competent_min")
    v = data.get("excellent_max_breaches")
    if not isinstance(v, int) or not 0 <= v <= 10:
        raise ServiceError("评为优秀允许的负面清单次数应为 0 到 10。", "excellent_max_breaches")
    values["excellent_max_breaches"] = v
    settings = db.session.get(ReviewSettings, town.id)
    if settings is None:
        settings = ReviewSettings(town_id=town.id)
        db.session.add(settings)
    changes = {k: v for k, v in values.items() if getattr(settings, k, None) != v}
    for k, v in values.items():
        setattr(settings, k, v)
    record(actor, "review_settings.update", settings, town.path, **changes)
    return settings


def share(part: int, whole: int) -> float | None:
    """part ÷ whole, or None when there is nothing to measure."""
    return part / whole if whole else None


@dataclass
class Metrics:
    """One 邻长's figures for a period, computed from the records."""

    user_id: int
    name: str
    #: Path of their (first) 邻, and the names of all their 邻.
    path: str
    neighborhoods: list[str]
    households: int = 0
    contacted_on_time: int = 0
    requests: int = 0
    requests_on_time: int = 0
    requests_at_neighborhood: int = 0
    requests_closed: int = 0
    rated: int = 0
    satisfied: int = 0
    breaches: int = 0
    points: int = 0

    @property
    def contact_share(self):
        return share(self.contacted_on_time, self.households)

    @property
    def on_time_share(self):
        return share(self.requests_on_time, self.requests)

    @property
    def neighborhood_share(self):
        """Of the requests closed, the share closed at 邻 (微事不出邻)."""
        return share(self.requests_at_neighborhood, self.requests_closed)

    @property
    def satisfaction_share(self):
        return share(self.satisfied, self.rated)


#: What each part of the score weighs (the supervisor's grade adds up to 20 more).
WEIGHTS = {"contact_share": 30, "on_time_share": 20, "neighborhood_share": 10,
           "satisfaction_share": 20}
BREACH_PENALTY = 10


def score_of(m: Metrics, grade: str) -> int:
    """0–100: each share times its weight (a share with nothing to measure counts in full:
    no requests is no failure), plus the grade, minus 10 per breach."""
    total = sum(weight * (1.0 if getattr(m, key) is None else getattr(m, key))
                for key, weight in WEIGHTS.items())
    total += GRADES[grade][1] - BREACH_PENALTY * m.breaches
    return max(0, min(100, round(total)))


def result_of(score: int, breaches: int, settings: ReviewSettings) -> str:
    if score >= settings.excellent_min and breaches <= settings.excellent_max_breaches:
        return "excellent"
    if score >= settings.competent_min:
        return "competent"
    if score >= settings.basic_min:
        return "basic"
    return "incompetent"


def _contact_windows(rule_period: str, method: str, start: date, end: date, now: datetime
                     ) -> list[tuple[str, datetime, datetime]]:
    """The rule's whole windows inside [start, end) that are over by ``now``."""
    from portal.blueprints.duties.services import next_period_start, period_start

    out = []
    w = period_start(rule_period, start)
    if w < start:
        w = next_period_start(rule_period, w)
    while True:
        following = next_period_start(rule_period, w)
        if following > end:
            break
        lo, hi = local_midnight_utc(w), local_midnight_utc(following)
        if hi <= now:
            out.append((method, lo, hi))
        w = following
    return out


def _met(windows, logs) -> bool:
    return all(any(lo <= at < hi and (method == "any" or how == "visit") for at, how in logs)
               for method, lo, hi in windows)


def review_metrics(path: str, start: date, end: date, now: datetime | None = None
                   ) -> list[Metrics]:
    """Figures for every 邻长 in post (at any time in the period) under ``path``:

    * households of their 邻 now, and of those the ones contacted on time: for some rule of
      the household's category, every whole window of the rule in the period that had begun
      for the household and is over saw a contact (by anyone; a 上门 rule needs a visit);
      a household with no such window is not counted;
    * requests of their 邻 made in the period: answered at 邻 before the 4-hour deadline,
      closed, closed at 邻; rated, rated 满意 or 基本满意;
    * 六不得 breaches in the period not withdrawn; points earned in the period.

    Five queries whatever the number of people."""
    from portal.blueprints.auth.models import User
    from portal.blueprints.duties.models import DutyLog
    from portal.blueprints.duties.services import town_rules
    from portal.blueprints.regions.models import Household, Post, Region
    from portal.blueprints.requests.models import Request
    from portal.scope import path_range

    now = now or utcnow()
    lo, hi = local_midnight_utc(start), local_midnight_utc(end)
    people: dict[int, Metrics] = {}
    hood_owner: dict[int, list[int]] = {}
    for user_id, name, hood_id, hood_path, hood_name in db.session.execute(
            select(Post.user_id, User.name, Region.id, Region.path, Region.name)
            .join(User, User.id == Post.user_id).join(Region, Region.id == Post.region_id)
            .where(Post.role == "neighbor_chief", path_range(Region.path, path),
                   Post.started_at < hi, (Post.ended_at.is_(None)) | (Post.ended_at > lo))
            .order_by(Region.path, User.name, Post.id)):
        m = people.setdefault(user_id, Metrics(user_id, name, hood_path, []))
        if hood_name not in m.neighborhoods:
            m.neighborhoods.append(hood_name)
        owners = hood_owner.setdefault(hood_id, [])
        if user_id not in owners:
            owners.append(user_id)
    if not people:
        return []

    def credit(hood_id: int, field: str, n: int = 1):
        for uid in hood_owner.get(hood_id, ()):
            setattr(people[uid], field, getattr(people[uid], field) + n)

    rules = town_rules(town_id_of(path))
    households: dict[int, tuple] = {}
    logs: dict[int, list] = {}
    # every household of the 邻 with its contacts in the period (one row without a log when
    # there were none)
    for household_id, hood_id, special_since, created_at, at, how in db.session.execute(
            select(Household.id, Household.neighborhood_id, Household.special_since,
                   Household.created_at, DutyLog.occurred_at, DutyLog.method)
            .outerjoin(DutyLog, and_(DutyLog.household_id == Household.id,
                                     DutyLog.voided_at.is_(None),
                                     DutyLog.occurred_at >= lo, DutyLog.occurred_at < hi))
            .where(Household.neighborhood_id.in_(hood_owner))):
        households[household_id] = (hood_id, special_since, created_at)
        if at is not None:
            logs.setdefault(household_id, []).append((at, how))
    # each rule's windows once; a household is asked for those that began once its category
    # applied to it
    windows = {category: [_contact_windows(r.period, r.method, start, end, now)
                          for r in rules if r.category == category]
               for category in ("special", "ordinary")}
    for household_id, (hood_id, special_since, created_at) in households.items():
        category = "special" if special_since is not None else "ordinary"
        since = special_since if category == "special" else created_at
        per_rule = [w for w in ([x for x in rule if x[1] >= since] for rule in windows[category])
                    if w]
        if not per_rule:
            continue
        credit(hood_id, "households")
        if any(_met(w, logs.get(household_id, [])) for w in per_rule):
            credit(hood_id, "contacted_on_time")

    rated = Request.rating.is_not(None)
    for hood_id, total, on_time, closed, at_hood, n_rated, satisfied in db.session.execute(
            select(Request.neighborhood_id, func.count(),
                   func.sum(case((and_(Request.status != "new",
                                       Request.missed.op("&")(1) == 0), 1), else_=0)),
                   func.sum(case((Request.status == "closed", 1), else_=0)),
                   func.sum(case((and_(Request.status == "closed",
                                       Request.closed_level == 0), 1), else_=0)),
                   func.sum(case((rated, 1), else_=0)),
                   func.sum(case((Request.rating.in_(("satisfied", "basic")), 1), else_=0)))
            .where(Request.neighborhood_id.in_(hood_owner), Request.created_at >= lo,
                   Request.created_at < hi).group_by(Request.neighborhood_id)):
        credit(hood_id, "requests", total)
        credit(hood_id, "requests_on_time", int(on_time or 0))
        credit(hood_id, "requests_closed", int(closed or 0))
        credit(hood_id, "requests_at_neighborhood", int(at_hood or 0))
        credit(hood_id, "rated", int(n_rated or 0))
        credit(hood_id, "satisfied", int(satisfied or 0))
    breaches = (select(func.count()).where(
        Breach.user_id == User.id, Breach.withdrawn_at.is_(None), Breach.occurred_on >= start,
        Breach.occurred_on < end).correlate(User).scalar_subquery())
    points = (select(func.coalesce(func.sum(PointsEntry.delta), 0)).where(
        PointsEntry.user_id == User.id, PointsEntry.kind.in_(("award", "reversal")),
        PointsEntry.at >= lo, PointsEntry.at < hi).correlate(User).scalar_subquery())
    for user_id, n, total in db.session.execute(
            select(User.id, breaches, points).where(User.id.in_(people))):
        people[user_id].breaches, people[user_id].points = int(n or 0), int(total or 0)
    return list(people.values())


def reviews_of(path: str, start: date, end: date) -> dict[int, Review]:
    from portal.scope import path_range

    return {r.user_id: r for r in db.session.scalars(
        select(Review).where(path_range(Review.path, path), Review.period_start == start,
                             Review.period_end == end))}


def may_review(scope, path: str) -> bool:
    """Supervisors of a 邻长: their 组长 or 片长, or village and town staff."""
    return scope.allows("supervise", path)


def save_review(actor, scope, user_id: int, start: date, end: date, grade: str, comment: str,
                now: datetime | None = None) -> Review:
    """Grade a 邻长 for a period: the metrics are computed now and kept with the grade, and
    the result follows the town's thresholds. Grading again replaces the grade (audited)."""
    now = now or utcnow()
    if grade not in GRADES:
        raise ServiceError("请选择评议等次。", "grade")
    comment = clean_text(comment, "评语", 1000, field="comment")
    if end > to_local(now).date():
        raise ServiceError("评议期结束后才能评定。", "period")
    existing = db.session.scalar(select(Review).where(
        Review.user_id == user_id, Review.period_start == start, Review.period_end == end))
    path = existing.path if existing else None
    if path is None:
        from portal.blueprints.regions.models import Post, Region

        path = db.session.scalar(
            select(Region.path).join(Post, Post.region_id == Region.id)
            .where(Post.user_id == user_id, Post.role == "neighbor_chief")
            .order_by(Post.ended_at.is_not(None), Region.path).limit(1))
    if path is None:
        raise ServiceError("这个人不是邻长。")
    if not may_review(scope, path):
        raise PermissionError("由组长、片长或村(社区)、镇干部评议。")
    if actor.id == user_id:
        raise PermissionError("不能评议自己。")
    found = [m for m in review_metrics(path, start, end, now) if m.user_id == user_id]
    if not found:
        raise ServiceError("这个人在评议期内不是这里的邻长。")
    m = found[0]
    score = score_of(m, grade)
    result = result_of(score, m.breaches, review_settings(town_id_of(path)))
    figures = {k: getattr(m, k) for k in (
        "households", "contacted_on_time", "requests", "requests_on_time",
        "requests_at_neighborhood", "requests_closed", "rated", "satisfied", "breaches",
        "points")}
    review = existing or Review(town_id=town_id_of(path), user_id=user_id, path=path,
                                period_start=start, period_end=end)
    for k, v in dict(figures, grade=grade, comment=comment, score=score, result=result,
                     reviewer_id=actor.id, reviewed_at=now).items():
        setattr(review, k, v)
    if existing is None:
        db.session.add(review)
    db.session.flush()
    record(actor, "review.save", review, path, person=m.name,
           period=period_label(start, end), grade=GRADES[grade][0], score=score,
           result=RESULTS[result])
    return review


def excellent(path: str, start: date, end: date) -> list[Review]:
    """The 优秀 of a period under ``path``: for commendation nominations and the reserve-cadre
    pool (后备干部) list."""
    from portal.scope import path_range

    return list(db.session.scalars(
        select(Review).options(joinedload(Review.user))
        .where(path_range(Review.path, path), Review.period_start == start,
               Review.period_end == end, Review.result == "excellent")
        .order_by(Review.score.desc(), Review.path, Review.user_id)))
