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

from sqlalchemy import and_, case, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from portal.audit import record
from portal.blueprints.duties.models import ChecklistItem
from portal.blueprints.points.models import (
    EVENT_ITEM_KIND,
    EVENTS,
    Breach,
    PointsEntry,
    PointsRule,
    Redemption,
    Reward,
)
from portal.clock import local_midnight_utc, to_local, utcnow
from portal.errors import ServiceError
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


def award(user_id: int, event: str, source_type: str, source_id: int, *, at: datetime,
          path: str, item_id: int | None = None, note: str = "") -> int | None:
    """Pay ``user_id`` for an event by the rule version in force on its local date, within the
    rule's daily and monthly caps (a capped award pays what is left, or nothing). A record
    already paid by this rule is not paid again. Returns the new entry's id, or None when
    nothing was paid.

    One statement (INSERT … SELECT): the version, what the caps leave and the row are worked
    out by the database, so the page that records the event stays within its query budget."""
    town_id = town_id_of(path)
    family = and_(PointsRule.town_id == town_id, PointsRule.event == event,
                  PointsRule.item_id.is_(None) if item_id is None
                  else PointsRule.item_id == item_id)
    version = (select(PointsRule.id, PointsRule.points, PointsRule.daily_cap,
                      PointsRule.monthly_cap, PointsRule.active)
               .where(family, PointsRule.effective_from <= to_local(at).date())
               .order_by(PointsRule.effective_from.desc(), PointsRule.id.desc())
               .limit(1).subquery("version"))
    reversal = aliased(PointsEntry)

    def used(start: datetime, end: datetime):
        return (select(func.coalesce(func.sum(func.abs(PointsEntry.delta)), 0))
                .where(PointsEntry.user_id == user_id, PointsEntry.kind == "award",
                       PointsEntry.rule_id.in_(select(PointsRule.id).where(family)),
                       PointsEntry.at >= start, PointsEntry.at < end,
                       ~select(reversal.id).where(reversal.reverses_id == PointsEntry.id)
                       .exists())
                .scalar_subquery())

    unlimited = 1_000_000
    size = func.abs(version.c.points)
    amount = _least(
        size,
        case((version.c.daily_cap.is_(None), unlimited),
             else_=version.c.daily_cap - used(*day_bounds(at))),
        case((version.c.monthly_cap.is_(None), unlimited),
             else_=version.c.monthly_cap - used(*month_bounds(at))))
    delta = case((version.c.points < 0, -amount), else_=amount)
    reason = case((amount < size, "已达上限，本次按剩余分值计"), else_=note[:200])
    columns = ("user_id", "town_id", "path", "kind", "delta", "rule_id", "source_type",
               "source_id", "reason", "at", "created_at")
    rows = select(literal(user_id), literal(town_id), literal(path), literal("award"), delta,
                  version.c.id, literal(source_type), literal(source_id), reason, literal(at),
                  literal(utcnow())).where(version.c.active.is_(True), amount > 0)
    statement = (_insert().from_select(columns, rows).on_conflict_do_nothing()
                 .returning(PointsEntry.id))
    return db.session.execute(statement).scalar_one_or_none()


def reverse(entry: PointsEntry, reason: str, operator=None, now: datetime | None = None
            ) -> PointsEntry:
    """Cancel an entry with an opposite one (once: the database refuses a second reversal)."""
    reason = (reason or "").strip()
    if len(reason) < 2:
        raise ServiceError("请填写冲正理由。", "reason")
    if entry.kind == "reversal":
        raise ServiceError("冲正记录不能再冲正。")
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


# -- breaches (六不得) -------------------------------------------------------------------------------
def record_breach(actor, scope, chief_post, item_id: int, occurred_on: date, evidence: str,
                  today: date | None = None) -> Breach:
    """A supervisor records a breach against a 邻长 (their post), deducting by the rule."""
    from portal.blueprints.regions.models import Region

    region = db.session.get(Region, chief_post.region_id)
    if chief_post.role != "neighbor_chief" or chief_post.ended_at is not None:
        raise ServiceError("只能对在岗邻长记录负面清单。")
    if not scope.allows("manage", region.path) and not (
            scope.roles_at(region.path) & {"group_chief", "area_chief"}):
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
