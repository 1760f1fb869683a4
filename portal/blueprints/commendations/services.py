"""Rules of 好邻 commendations: campaigns, nominations with a statistics snapshot, the 公示 with
objections, and the decision (never before the notice period is over, never with an objection
open or upheld). Every change writes an audit row; views commit."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select

from portal.audit import record
from portal.blueprints.commendations.models import Campaign, Nomination, Objection
from portal.clock import local_midnight_utc, to_local, utcnow
from portal.errors import ServiceError, clean_text
from portal.extensions import db
from portal.scope import town_id_of


def today(now: datetime | None = None) -> date:
    """The local date (tests move the clock through this module's utcnow)."""
    return to_local(now or utcnow()).date()


def _campaign_fields(data: dict, now: datetime | None) -> dict:
    """The checked fields of a campaign from ``data``: title, honour, quota, period_start,
    period_end, notice_start, notice_end, design."""
    from portal.blueprints.commendations.models import POSTER_DESIGNS

    fields = {"title": clean_text(data.get("title"), "活动名称", 60, minimum=4, field="title"),
              "honour": clean_text(data.get("honour"), "荣誉称号", 20, minimum=2,
                                   field="honour")}
    quota = data.get("quota")
    if not isinstance(quota, int) or not 1 <= quota <= 1000:
        raise ServiceError("名额应为 1 到 1000 之间的整数。", "quota")
    days = {k: data.get(k) for k in ("period_start", "period_end", "notice_start",
                                     "notice_end")}
    for k, v in days.items():
        if not isinstance(v, date):
            raise ServiceError("请填写日期。", k)
    if days["period_end"] <= days["period_start"]:
        raise ServiceError("统计截止日期应晚于开始日期。", "period_end")
    if days["notice_end"] < days["notice_start"]:
        raise ServiceError("公示结束日期不能早于开始日期。", "notice_end")
    if days["notice_start"] < today(now):
        raise ServiceError("公示开始日期不能早于今天。", "notice_start")
    design = data.get("design") or "red"
    if design not in POSTER_DESIGNS:
        raise ServiceError("请选择海报样式。", "design")
    return {**fields, "quota": quota, **days, "design": design}


def create_campaign(actor, scope, region, data: dict, now: datetime | None = None) -> Campaign:
    """A campaign of a town or a village (its staff)."""
    if region.level not in ("town", "village"):
        raise ServiceError("评选活动按镇或村(社区)开展。", "region_id")
    if not scope.allows("manage", region.path):
        raise PermissionError("由村(社区)或镇干部发起评选。")
    fields = _campaign_fields(data, now)
    campaign = Campaign(town_id=region.town_id, region_id=region.id, path=region.path,
                        created_by_id=actor.id, **fields)
    db.session.add(campaign)
    db.session.flush()
    record(actor, "campaign.create", campaign, region.path, title=fields["title"],
           quota=fields["quota"])
    return campaign


def update_campaign(actor, scope, campaign: Campaign, data: dict,
                    now: datetime | None = None) -> None:
    """Correct a campaign before its 公示 (what is public then stays as published). A new
    statistics period takes every nomination's snapshot again."""
    if not scope.allows("manage", campaign.path):
        raise PermissionError("由发起评选的干部修改。")
    if campaign.status != "nominating":
        raise ServiceError("已经公示，不能再修改这次评选。")
    fields = _campaign_fields(data, now)
    changed = {k: v for k, v in fields.items() if getattr(campaign, k) != v}
    if not changed:
        raise ServiceError("没有修改任何内容。")
    for key, value in changed.items():
        setattr(campaign, key, value)
    if {"period_start", "period_end"} & set(changed):
        for n in db.session.scalars(select(Nomination).where(
                Nomination.campaign_id == campaign.id, Nomination.status == "nominated")):
            hood_id = int(n.path.strip("/").split("/")[-1])
            n.stats = stats_snapshot(n.user_id, [hood_id], campaign.period_start,
                                     campaign.period_end)
    record(actor, "campaign.update", campaign, campaign.path,
           **{k: str(v) for k, v in changed.items()})


def stats_snapshot(user_id: int, hood_ids: list[int], start: date, end: date) -> dict:
    """What the records say of a 邻长 in [start, end): households linked now, contacts they
    logged (not voided), requests they closed, disputes they mediated (sessions recorded),
    points earned."""
    from portal.blueprints.duties.models import DutyLog
    from portal.blueprints.points.models import PointsEntry
    from portal.blueprints.regions.models import Household
    from portal.blueprints.requests.models import Mediation, Request

    lo, hi = local_midnight_utc(start), local_midnight_utc(end)
    households = (select(func.count()).select_from(Household)
                  .where(Household.neighborhood_id.in_(hood_ids)).scalar_subquery())
    visits = (select(func.count()).select_from(DutyLog)
              .where(DutyLog.user_id == user_id, DutyLog.voided_at.is_(None),
                     DutyLog.occurred_at >= lo, DutyLog.occurred_at < hi).scalar_subquery())
    requests = (select(func.count()).select_from(Request)
                .where(Request.closed_by_id == user_id, Request.closed_at >= lo,
                       Request.closed_at < hi).scalar_subquery())
    disputes = (select(func.count()).select_from(Mediation)
                .where(Mediation.recorded_by_id == user_id, Mediation.held_at >= lo,
                       Mediation.held_at < hi).scalar_subquery())
    points = (select(func.coalesce(func.sum(PointsEntry.delta), 0))
              .where(PointsEntry.user_id == user_id,
                     PointsEntry.kind.in_(("award", "reversal")),
                     PointsEntry.at >= lo, PointsEntry.at < hi).scalar_subquery())
    row = db.session.execute(select(households, visits, requests, disputes, points)).one()
    return dict(zip(("households", "visits", "requests", "disputes", "points"),
                    (int(v or 0) for v in row), strict=True))


def nominate(actor, scope, campaign: Campaign, chief_post, deeds: str, photo: str | None = None,
             review_id: int | None = None, now: datetime | None = None) -> Nomination:
    """Village staff nominate a 邻长 in post under the campaign's region, with deeds and the
    statistics snapshot of the campaign's period."""
    from portal.blueprints.regions.models import Region

    if campaign.status != "nominating":
        raise ServiceError("这次评选已经开始公示，不能再推荐。")
    if chief_post.role != "neighbor_chief" or chief_post.ended_at is not None:
        raise ServiceError("只能推荐在岗的邻长。", "post_id")
    hood = db.session.get(Region, chief_post.region_id)
    if not hood.path.startswith(campaign.path):
        raise ServiceError("这位邻长不在本次评选的范围内。", "post_id")
    if not scope.allows("manage", hood.path):
        raise PermissionError("由村(社区)或镇干部推荐。")
    deeds = clean_text(deeds, "主要事迹", 1500, minimum=20, field="deeds")
    earlier = db.session.scalar(select(Nomination).where(
        Nomination.campaign_id == campaign.id, Nomination.user_id == chief_post.user_id))
    if earlier is not None and earlier.status != "withdrawn":
        raise ServiceError("这位邻长已经被推荐过了。", "post_id")
    stats = stats_snapshot(chief_post.user_id, [hood.id], campaign.period_start,
                           campaign.period_end)
    fields = dict(post_id=chief_post.id, path=hood.path, deeds=deeds, photo=photo, stats=stats,
                  review_id=review_id, nominated_by_id=actor.id, status="nominated",
                  decided_by_id=None, decided_at=None, decision_note="")
    if earlier is not None:  # withdrawn, nominated again (one row per person and campaign)
        nomination = earlier
        for key, value in fields.items():
            setattr(nomination, key, value)
    else:
        nomination = Nomination(campaign_id=campaign.id, user_id=chief_post.user_id, **fields)
        db.session.add(nomination)
    db.session.flush()
    record(actor, "nomination.create", nomination, hood.path, campaign=campaign.title,
           **stats)
    return nomination


def open_notice(actor, scope, campaign: Campaign, now: datetime | None = None) -> None:
    """Publish the nominations (公示): from then on nothing is nominated or edited."""
    if not scope.allows("manage", campaign.path):
        raise PermissionError("由发起评选的干部公示。")
    if campaign.status != "nominating":
        raise ServiceError("这次评选已经公示过了。")
    if not db.session.scalar(select(func.count()).select_from(Nomination).where(
            Nomination.campaign_id == campaign.id, Nomination.status == "nominated")):
        raise ServiceError("还没有推荐人选，不能公示。")
    campaign.status = "notice"
    record(actor, "campaign.notice", campaign, campaign.path, notice_start=campaign.notice_start,
           notice_end=campaign.notice_end)


def in_notice(campaign: Campaign, now: datetime | None = None) -> bool:
    day = today(now)
    return campaign.status == "notice" and campaign.notice_start <= day <= campaign.notice_end


def lodge_objection(nomination: Nomination, campaign: Campaign, reason: str, contact: str = "",
                    now: datetime | None = None) -> Objection:
    """Anyone, without an account, during the notice period."""
    if not in_notice(campaign, now):
        raise ServiceError("不在公示期内，不能提出异议。")
    if nomination.status != "nominated":
        raise ServiceError("这位人选已不在公示名单中。")
    reason = clean_text(reason, "异议理由", 1000, minimum=10, field="reason")
    contact = clean_text(contact, "联系方式", 60, field="contact")
    objection = Objection(nomination_id=nomination.id, reason=reason, contact=contact,
                          created_at=now or utcnow())
    db.session.add(objection)
    db.session.flush()
    record(None, "objection.create", objection, nomination.path)
    return objection


def resolve_objection(actor, scope, objection: Objection, nomination: Nomination, upheld: bool,
                      resolution: str, now: datetime | None = None) -> None:
    if not scope.allows("manage", nomination.path):
        raise PermissionError("由村(社区)或镇干部核实异议。")
    if objection.resolved_at is not None:
        raise ServiceError("这条异议已经处理过了。")
    resolution = clean_text(resolution, "核实情况", 1000, minimum=4, field="resolution")
    objection.resolved_at, objection.resolved_by_id = now or utcnow(), actor.id
    objection.upheld, objection.resolution = bool(upheld), resolution
    record(actor, "objection.resolve", objection, nomination.path, upheld=bool(upheld))


def decide(actor, scope, campaign: Campaign, nomination: Nomination, approve: bool,
           note: str = "", now: datetime | None = None) -> None:
    """Town staff approve or reject after the notice period has ended, never before; not while
    an objection is open, and an upheld objection rules approval out."""
    if not scope.allows("town", f"/{town_id_of(campaign.path)}/"):
        raise PermissionError("由镇干部审定。")
    if nomination.status != "nominated":
        raise ServiceError("这位人选已经审定过了。")
    if campaign.status != "notice":
        raise ServiceError("公示之后才能审定。")
    if today(now) <= campaign.notice_end:
        raise ServiceError(f"公示期到 {campaign.notice_end} 结束，结束后才能审定。")
    objections = db.session.execute(select(Objection.resolved_at, Objection.upheld).where(
        Objection.nomination_id == nomination.id)).all()
    if any(resolved is None for resolved, _ in objections):
        raise ServiceError("还有异议没有核实处理，处理完才能审定。")
    if approve and any(upheld for _, upheld in objections):
        raise ServiceError("有异议经核实成立，不能评定。")
    note = clean_text(note, "说明", 200, field="note")
    if approve:
        # the campaign's row locked (PostgreSQL): two approvals at once cannot pass the quota
        db.session.execute(select(Campaign.id).where(Campaign.id == campaign.id)
                           .with_for_update())
        approved = db.session.scalar(select(func.count()).select_from(Nomination).where(
            Nomination.campaign_id == campaign.id, Nomination.status == "approved"))
        if approved >= campaign.quota:
            raise ServiceError(f"名额 {campaign.quota} 个已满。")
    nomination.status = "approved" if approve else "rejected"
    nomination.decided_by_id, nomination.decided_at = actor.id, now or utcnow()
    nomination.decision_note = note
    record(actor, "nomination.approve" if approve else "nomination.reject", nomination,
           nomination.path, note=note)
    _close_when_decided(campaign)


def _close_when_decided(campaign: Campaign) -> None:
    """Once published, a campaign with no nomination left to decide is over."""
    db.session.flush()
    if campaign.status == "notice" and not db.session.scalar(
            select(func.count()).select_from(Nomination).where(
                Nomination.campaign_id == campaign.id, Nomination.status == "nominated")):
        campaign.status = "closed"


def withdraw(actor, scope, campaign: Campaign, nomination: Nomination, reason: str,
             now: datetime | None = None) -> None:
    """The cadres over a nominee take the nomination back before the town decides (the wrong
    person, deeds to rewrite, facts an objection brought out). It stays on record with the
    reason, leaves the public 公示, and the person may be nominated again while nominating."""
    if not scope.allows("manage", nomination.path):
        raise PermissionError("由村(社区)或镇干部撤回推荐。")
    if nomination.status != "nominated":
        raise ServiceError("这位人选已经审定或撤回，不能再撤回。")
    reason = clean_text(reason, "撤回原因", 200, minimum=4, field="reason")
    nomination.status = "withdrawn"
    nomination.decided_by_id, nomination.decided_at = actor.id, now or utcnow()
    nomination.decision_note = reason
    record(actor, "nomination.withdraw", nomination, nomination.path, reason=reason)
    _close_when_decided(campaign)
