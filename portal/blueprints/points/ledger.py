"""积分 pages of the ledger: my points, a person's ledger (with reversals by staff), the rule
table (town staff add versions), the ranking of the user's village or town, and the public
公示 ranking and person pages (no login, no residents' data).

Who may see a person's ledger: the person, and a supervisor (组长, 片长, 村/镇干部, admin) over
one of the person's posts or over where one of their entries was earned; a 邻长 sees only their
own. Reversing needs staff over the entry's path. The public pages show names, totals, events,
checklist item titles and a reference ("履职记录 #123") only: never households, addresses,
phones, notes, request texts or reasons written by staff."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased
from werkzeug.routing import BuildError
from wtforms import BooleanField, DateField, HiddenField, IntegerField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from portal.blueprints.auth.models import User
from portal.blueprints.duties.models import ChecklistItem, DutyLog
from portal.blueprints.points import bp
from portal.blueprints.points import services as svc
from portal.blueprints.points.models import (
    EVENT_ITEM_KIND,
    EVENTS,
    KINDS,
    SOURCES,
    PointsEntry,
    PointsRule,
)
from portal.blueprints.regions.models import Post, Region
from portal.clock import local_today, utcnow
from portal.errors import ServiceError, attempt
from portal.extensions import db
from portal.forms import strip
from portal.scope import current_scope, get_town_or_404, path_range

PER_PAGE = 50
#: Levels a ranking (公示) is published for.
RANK_LEVELS = ("town", "village")
#: Column headings of the ranking (the full names are in EVENTS, shown under the table).
SHORT = {"duty_log": "履职", "request_on_time": "按时响应", "request_at_neighborhood": "邻级办结",
         "agenda_raise": "提议题", "agenda_attend": "参会", "commendation": "表彰",
         "breach": "负面清单", "other": "其他"}
PUBLIC_NOTE = "积分公示：每一分都可查到来源"
PERIOD_HELP = "期间应写成 2026-11（月）、2026Q4（季度）或 2026（全年）。"
MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")


def _me():
    return current_user._get_current_object()


def _link(endpoint: str, **values) -> str | None:
    """url_for, or None while the endpoint is not there (e.g. a page another part adds)."""
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


# -- forms ---------------------------------------------------------------------------------------
class ReverseForm(FlaskForm):
    reason = TextAreaField("冲正理由", filters=[strip],
                           validators=[Length(max=200, message="冲正理由最多 200 字。")],
                           render_kw={"rows": 3, "maxlength": 200,
                                      "placeholder": "如：重复登记，同一次走访记了两次"})


class SearchForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField("查看某人的积分", filters=[strip],
                    validators=[Length(max=40, message="姓名最多 40 字。")],
                    render_kw={"maxlength": 40, "placeholder": "输入姓名", "type": "search"})


CAP_MESSAGE = "上限应为正整数，不设上限请留空。"


class RuleForm(FlaskForm):
    """A new version of one rule; ``rule`` says which ("event:item_id")."""

    rule = HiddenField()
    points = IntegerField("分值", validators=[InputRequired("请填写分值。")],
                          invalid_value_message="分值应为整数。",
                          render_kw={"inputmode": "numeric"})
    daily_cap = IntegerField("每日上限（分）", validators=[Optional()],
                             invalid_value_message=CAP_MESSAGE,
                             render_kw={"inputmode": "numeric", "min": 1,
                                        "placeholder": "不限"})
    monthly_cap = IntegerField("每月上限（分）", validators=[Optional()],
                               invalid_value_message=CAP_MESSAGE,
                               render_kw={"inputmode": "numeric", "min": 1,
                                          "placeholder": "不限"})
    effective_from = DateField("生效日期", validators=[InputRequired("请填写生效日期。")],
                               invalid_value_message="日期格式不对，请按 2026-11-22 的样子填写。")
    active = BooleanField("启用")


# -- periods -------------------------------------------------------------------------------------


def parse_period(text: str | None) -> svc.Period:
    """"2026-11" (a month), "2026Q4" (a quarter) or "2026" (a year)."""
    text = (text or "").strip().upper()
    m = MONTH.match(text)
    if m:
        year, month = int(m.group(1)), int(m.group(2))
        if not (2000 <= year <= 2100 and 1 <= month <= 12):
            raise ServiceError(PERIOD_HELP, "period")
        return svc.month_period(year, month)
    try:
        period = svc.quarter_or_year(text)
    except ServiceError:
        raise ServiceError(PERIOD_HELP, "period") from None
    if not 2000 <= period.start.year <= 2100:
        raise ServiceError(PERIOD_HELP, "period")
    return period


def current_period(today: date) -> svc.Period:
    return svc.month_period(today.year, today.month)


def period_choices(today: date, chosen: svc.Period | None, months: int = 6,
                   quarters: int = 4) -> list[tuple[str, str]]:
    """The last ``months`` months, ``quarters`` quarters and two years (and the chosen one)."""
    out = []
    first = today.replace(day=1)
    for _ in range(months):
        p = svc.month_period(first.year, first.month)
        out.append((p.key, p.label))
        first = (first - timedelta(days=1)).replace(day=1)
    quarter = svc.quarter_or_year(svc.quarter_of(today))
    for _ in range(quarters):
        out.append((quarter.key, quarter.label))
        quarter = svc.quarter_or_year(svc.previous_quarter(quarter.start))
    for year in (today.year, today.year - 1):
        out.append((str(year), f"{year} 年度"))
    if chosen is not None and chosen.key not in dict(out):
        out.insert(0, (chosen.key, chosen.label))
    return out


def _period_arg() -> tuple[svc.Period | None, str | None]:
    """The ``period`` of the query string (this month when absent), or the message why not."""
    asked = request.args.get("period")
    if not asked:
        return current_period(local_today()), None
    try:
        return parse_period(asked), None
    except ServiceError as e:
        return None, e.message


# -- who may see whose ledger --------------------------------------------------------------------
def _person_or_404(user_id: int) -> User:
    """The person whose ledger to show: oneself, or someone with a post or an entry under a
    node the user supervises (404 otherwise, so their existence does not leak)."""
    scope = current_scope()
    if user_id == current_user.id:
        return _me()
    tops = scope.top_paths("supervise")
    if not tops:
        abort(404)
    post_here = (select(Post.id).join(Region, Region.id == Post.region_id)
                 .where(Post.user_id == User.id, scope.region_clause(Region.path, "supervise")).exists())
    entry_here = (select(PointsEntry.id)
                  .where(PointsEntry.user_id == User.id, scope.region_clause(PointsEntry.path, "supervise"))
                  .exists())
    person = db.session.scalar(select(User).where(User.id == user_id, or_(post_here,
                                                                          entry_here)))
    if person is None:
        abort(404)
    return person


# -- ledger lines --------------------------------------------------------------------------------
@dataclass
class Line:
    entry: PointsEntry
    label: str
    item: str | None
    reversed_by: int | None
    url: str | None = None
    can_reverse: bool = False

    @property
    def source(self) -> str:
        e = self.entry
        return f"{SOURCES.get(e.source_type, e.source_type)} #{e.source_id}"


def label_of(kind: str, event: str | None, source_type: str) -> str:
    name = EVENTS.get(event) if event else None
    if kind == "award":
        return name or SOURCES.get(source_type, source_type)
    return KINDS.get(kind, kind) + (f" · {name}" if name else "")


def _source_url(scope, entry: PointsEntry, household_id: int | None) -> str | None:
    """Where the record that wrote the entry is (its page checks the scope again)."""
    kind, ref = entry.source_type, entry.source_id
    if kind == "duty_log":
        if household_id is None or not scope.can_view(entry.path):
            return None
        return _link("duties.household", household_id=household_id)
    if kind == "entry":
        return f"#e{ref}"
    endpoint = {"request": ("requests.detail", "request_id"),
                "agenda_item": ("agenda.item", "item_id"),
                "meeting": ("agenda.meeting", "meeting_id"),
                "breach": ("points.breach", "breach_id"),
                "redemption": ("points.voucher", "redemption_id")}.get(kind)
    return _link(endpoint[0], **{endpoint[1]: ref}) if endpoint else None


def _lines(*where, limit: int | None = None, offset: int = 0, manage: bool = False
           ) -> list[Line]:
    """Ledger lines, newest written first, in one query: the entry, its rule's event and item,
    the household of a duty log (for the link) and the reversal of it if any."""
    scope = current_scope()
    reversal = aliased(PointsEntry)
    reversed_by = (select(reversal.id).where(reversal.reverses_id == PointsEntry.id)
                   .correlate(PointsEntry).scalar_subquery())
    q = (select(PointsEntry, PointsRule.event, ChecklistItem.title, DutyLog.household_id,
                reversed_by)
         .outerjoin(PointsRule, PointsRule.id == PointsEntry.rule_id)
         .outerjoin(ChecklistItem, ChecklistItem.id == PointsRule.item_id)
         .outerjoin(DutyLog, and_(PointsEntry.source_type == "duty_log",
                                  DutyLog.id == PointsEntry.source_id))
         .where(*where).order_by(PointsEntry.id.desc()).offset(offset))
    if limit is not None:
        q = q.limit(limit)
    out = []
    for entry, event, item, household_id, back in db.session.execute(q):
        out.append(Line(entry, label_of(entry.kind, event, entry.source_type), item, back,
                        _source_url(scope, entry, household_id),
                        manage and back is None and entry.kind == "award"
                        and scope.allows("manage", entry.path)))
    return out


def _month_earned(user_id: int, today: date) -> int:
    """Points earned this local month (awards and their reversals; not spending)."""
    lo, hi = current_period(today).bounds
    return int(db.session.scalar(
        select(func.coalesce(func.sum(PointsEntry.delta), 0))
        .where(PointsEntry.user_id == user_id, PointsEntry.kind.in_(("award", "reversal")),
               PointsEntry.at >= lo, PointsEntry.at < hi)) or 0)


def _page() -> int:
    return max(1, min(request.args.get("page", 1, type=int) or 1, 10_000))


def _ledger_context(person: User, manage: bool) -> dict:
    page = _page()
    lines = _lines(PointsEntry.user_id == person.id, limit=PER_PAGE + 1,
                   offset=(page - 1) * PER_PAGE, manage=manage)
    return dict(person=person, balance=svc.balance(person.id),
                earned=_month_earned(person.id, local_today()), lines=lines[:PER_PAGE],
                page=page, more=len(lines) > PER_PAGE, link=_link)


# -- my points -----------------------------------------------------------------------------------
@bp.get("/")
def index():
    scope = current_scope()
    ctx = _ledger_context(_me(), manage=False)
    form = SearchForm(request.args)
    found = None
    if scope.top_paths("supervise") and form.q.data and form.validate():
        found = db.session.execute(
            select(User.id, User.name, Region.name).join(Post, Post.user_id == User.id)
            .join(Region, Region.id == Post.region_id)
            .where(Post.ended_at.is_(None), User.name.contains(form.q.data, autoescape=True),
                   scope.region_clause(Region.path, "supervise"))
            .order_by(User.name, User.id, Region.path).limit(40)).all()
    return render_template("points/ledger.html", search=form, found=found,
                           can_search=bool(scope.top_paths("supervise")), **ctx)


@bp.get("/people/<int:user_id>")
def person(user_id: int):
    who = _person_or_404(user_id)
    return render_template("points/ledger_person.html", own=who.id == current_user.id,
                           **_ledger_context(who, manage=True))


def _entry_for_staff(entry_id: int) -> PointsEntry:
    """404 outside the user's subtrees (their own entry excepted: 403), 403 unless staff."""
    scope = current_scope()
    entry = db.session.get(PointsEntry, entry_id)
    if entry is None:
        abort(404)
    if not scope.allows("manage", entry.path):
        if entry.user_id == current_user.id or scope.can_view(entry.path):
            abort(403)
        abort(404)
    return entry


def _render_reverse(entry_id: int, form, status: int = 200):
    line = _lines(PointsEntry.id == entry_id, manage=True)[0]
    name = db.session.scalar(select(User.name).where(User.id == line.entry.user_id))
    return render_template("points/ledger_reverse.html", line=line, name=name, form=form), status


@bp.route("/entries/<int:entry_id>/reverse", methods=["GET", "POST"])
def reverse(entry_id: int):
    entry = _entry_for_staff(entry_id)
    form = ReverseForm()
    if request.method == "GET":
        return _render_reverse(entry_id, form)
    done = {}
    if form.validate_on_submit() and attempt(form, lambda: done.setdefault(
            "back", svc.reverse(entry, form.reason.data, _me(), utcnow()))):
        back = done["back"]
        db.session.commit()
        flash(f"已冲正 {back.delta:+d} 分，理由已记录。")
        return redirect(url_for("points.person", user_id=back.user_id, _anchor=f"e{back.id}"),
                        303)
    db.session.rollback()
    return _render_reverse(entry_id, form, 422)


# -- rules ---------------------------------------------------------------------------------------
def _rule_key(event: str, item_id: int | None) -> str:
    return f"{event}:{item_id or ''}"


def _parse_rule_key(key: str) -> tuple[str, int | None]:
    event, _, item = (key or "").partition(":")
    if event not in EVENTS or (item and not item.isdigit()):
        raise ServiceError("未知的积分事项。")
    return event, int(item) if item else None


DEFAULTS = {event: (points, daily, monthly) for event, points, daily, monthly in svc.DEFAULT_RULES}


def _rule_form(key: str, rule: PointsRule | None, today: date) -> RuleForm:
    event = key.partition(":")[0]
    points, daily, monthly = (rule.points, rule.daily_cap, rule.monthly_cap) if rule \
        else DEFAULTS.get(event, (1, None, None))
    return RuleForm(formdata=None, data={
        "rule": key, "points": points, "daily_cap": daily, "monthly_cap": monthly,
        "effective_from": today, "active": rule.active if rule else True})


@dataclass
class RuleRow:
    key: str
    event: str
    #: The 七员 / 六不得 item's title; None for an event priced without an item.
    title: str | None
    #: The version in force today; None for an item that has no rule yet.
    rule: PointsRule | None
    #: The item was retired from the checklist.
    retired: bool = False


def _rule_rows(town, today: date) -> tuple[dict, list[tuple[str, list[RuleRow]]]]:
    items = {i.id: i for i in db.session.execute(
        select(ChecklistItem.id, ChecklistItem.title, ChecklistItem.sort, ChecklistItem.active,
               ChecklistItem.kind)
        .where(ChecklistItem.town_id == town.id,
               ChecklistItem.kind.in_(tuple(EVENT_ITEM_KIND.values())))
        .order_by(ChecklistItem.sort, ChecklistItem.id))}
    current = {(r.event, r.item_id): r for r in svc.current_rules(town.id, today)}
    groups = []
    for event in EVENTS:
        kind = EVENT_ITEM_KIND.get(event)
        rows = []
        if kind:
            for i in items.values():
                rule = current.get((event, i.id))
                if i.kind == kind and (rule is not None or i.active):
                    rows.append(RuleRow(_rule_key(event, i.id), event, i.title, rule,
                                        not i.active))
        elif (event, None) in current:
            rows.append(RuleRow(_rule_key(event, None), event, None, current[(event, None)]))
        if rows:
            groups.append((event, rows))
    return items, groups


def _render_rules(town, failed: RuleForm | None = None, status: int = 200):
    scope = current_scope()
    today = local_today()
    can_edit = scope.allows("town", town.path)
    items, groups = _rule_rows(town, today)
    forms = {}
    if can_edit:
        forms = {row.key: _rule_form(row.key, row.rule, today)
                 for _, rows in groups for row in rows}
    errors = []
    if failed is not None:
        if failed.rule.data in forms:
            forms[failed.rule.data] = failed
        else:
            errors = failed.form_errors or ["未知的积分事项。"]
    future = list(db.session.scalars(
        select(PointsRule).where(PointsRule.town_id == town.id,
                                 PointsRule.effective_from > today)
        .order_by(PointsRule.effective_from, PointsRule.event, PointsRule.item_id,
                  PointsRule.id)))
    towns = current_scope().town_ids("any")
    choices = []
    if towns is None or len(towns) > 1:
        q = select(Region.id, Region.name).where(Region.level == "town")
        if towns is not None:
            q = q.where(Region.id.in_(towns))
        choices = db.session.execute(q.order_by(Region.name, Region.id).limit(500)).all()
    return render_template(
        "points/rules.html", town=town, groups=groups, items=items, forms=forms,
        failed=failed.rule.data if failed is not None else None, errors=errors, future=future,
        can_edit=can_edit, towns=choices, today=today, events=EVENTS), status


@bp.route("/rules", methods=["GET", "POST"])
def rules():
    town_id = request.args.get("town", type=int)
    if request.method == "GET":
        return _render_rules(get_town_or_404(town_id))
    town = get_town_or_404(town_id, "town")
    form = RuleForm()
    saved = {}

    def change():
        event, item_id = _parse_rule_key(form.rule.data)
        saved["rule"] = svc.change_rule(
            _me(), town, event, item_id, points=form.points.data,
            daily_cap=form.daily_cap.data, monthly_cap=form.monthly_cap.data,
            effective_from=form.effective_from.data, active=bool(form.active.data),
            today=local_today())

    if form.validate_on_submit() and attempt(form, change):
        rule = saved["rule"]
        db.session.commit()
        flash(f"“{EVENTS[rule.event]}”的新规则已保存，{rule.effective_from} 起按新规则计分。")
        return redirect(url_for("points.rules", town=town.id,
                                _anchor=f"r-{rule.event}-{rule.item_id or 0}"), 303)
    db.session.rollback()
    return _render_rules(town, failed=form, status=422)


# -- rankings ------------------------------------------------------------------------------------
def _rank_regions(scope) -> list:
    """Towns and villages the user may see the ranking of: those in their view scope, and the
    town and village their own posts sit in (a 邻长's village)."""
    own = set()
    for g in scope.grants:
        if g.path != "/":
            own.update(int(p) for p in g.path.strip("/").split("/")[:2])
    where = scope.region_clause(Region.path, "view")
    if own:
        where = or_(where, Region.id.in_(own))
    return db.session.execute(
        select(Region.id, Region.name, Region.level, Region.path)
        .where(Region.level.in_(RANK_LEVELS), where).order_by(Region.path).limit(1000)).all()


def _default_region(scope, regions):
    """The village or town of the user's first (highest) post."""
    by_id = {r.id: r for r in regions}
    for g in sorted(scope.grants, key=lambda g: g.path.count("/")):
        ids = [int(p) for p in g.path.strip("/").split("/")[:2] if p]
        for rid in reversed(ids):
            if rid in by_id:
                return by_id[rid]
    return regions[0] if regions else None


def _event_columns(rows) -> list[str]:
    seen = {ev for r in rows for ev, n in r.by_event.items() if n}
    return [e for e in (*EVENTS, "other") if e in seen]


@bp.get("/ranking")
def ranking():
    scope = current_scope()
    regions = _rank_regions(scope)
    asked = request.args.get("region", type=int)
    region = next((r for r in regions if r.id == asked), None) if asked else \
        _default_region(scope, regions)
    if asked and region is None:
        abort(404)
    period, error = _period_arg()
    ctx = dict(regions=regions, region=region, period=period, error=error,
               periods=period_choices(local_today(), period), short=SHORT, events=EVENTS,
               asked_period=request.args.get("period", ""))
    if region is None or period is None:
        return render_template("points/ranking.html", rows=[], columns=[], linkable=set(),
                               **ctx), 422 if error else 200
    rows = svc.ranking(region.path, *period.bounds)
    if scope.allows("supervise", region.path):
        linkable = {r.user_id for r in rows}
    else:
        linkable = {current_user.id}
        if scope.top_paths("supervise") and rows:
            lo, hi = period.bounds
            linkable |= set(db.session.scalars(
                select(PointsEntry.user_id).where(
                    path_range(PointsEntry.path, region.path), PointsEntry.at >= lo,
                    PointsEntry.at < hi, scope.region_clause(PointsEntry.path, "supervise")).distinct()))
    return render_template("points/ranking.html", rows=rows, columns=_event_columns(rows),
                           linkable=linkable, **ctx)


def _public_region(region_id: int):
    """A village or town and its town, for the public pages (404 for any other level)."""
    region = db.session.get(Region, region_id)
    if region is None or region.level not in RANK_LEVELS:
        abort(404)
    town = region if region.level == "town" else db.session.get(Region, region.town_id)
    return region, town


@bp.get("/gongshi/<int:region_id>")
def public_ranking(region_id: int):
    region, town = _public_region(region_id)
    period, error = _period_arg()
    rows = svc.ranking(region.path, *period.bounds) if period else []
    return render_template(
        "points/public_ranking.html", region=region, town=town, period=period, error=error,
        rows=rows, columns=_event_columns(rows), short=SHORT, events=EVENTS, note=PUBLIC_NOTE,
        periods=period_choices(local_today(), period),
        asked_period=request.args.get("period", "")), 422 if error else 200


@bp.get("/gongshi/<int:region_id>/<int:user_id>")
def public_person(region_id: int, user_id: int):
    region, town = _public_region(region_id)
    period, _ = _period_arg()
    if period is None:
        abort(404)
    post_here = (select(Post.id).join(Region, Region.id == Post.region_id)
                 .where(Post.user_id == User.id, Post.ended_at.is_(None),
                        path_range(Region.path, region.path)).exists())
    found = db.session.execute(select(User.name, post_here).where(User.id == user_id)).first()
    if found is None:
        abort(404)
    name, has_post = found
    lo, hi = period.bounds
    rows = db.session.execute(
        select(PointsEntry.id, PointsEntry.at, PointsEntry.kind, PointsEntry.delta,
               PointsEntry.source_type, PointsEntry.source_id, PointsRule.event,
               ChecklistItem.title)
        .outerjoin(PointsRule, PointsRule.id == PointsEntry.rule_id)
        .outerjoin(ChecklistItem, ChecklistItem.id == PointsRule.item_id)
        .where(PointsEntry.user_id == user_id, path_range(PointsEntry.path, region.path),
               PointsEntry.kind.in_(("award", "reversal")), PointsEntry.at >= lo,
               PointsEntry.at < hi)
        .order_by(PointsEntry.at.desc(), PointsEntry.id.desc())).all()
    if not rows and not has_post:
        abort(404)
    lines = [dict(id=r.id, at=r.at, delta=r.delta, item=r.title,
                  label=label_of(r.kind, r.event, r.source_type),
                  source=f"{SOURCES.get(r.source_type, r.source_type)} #{r.source_id}",
                  anchor=f"#e{r.source_id}" if r.source_type == "entry" else None)
             for r in rows]
    sums: dict[str, int] = {}
    for r in rows:
        sums[r.event or "other"] = sums.get(r.event or "other", 0) + r.delta
    by_event = {e: sums[e] for e in (*EVENTS, "other") if e in sums}
    return render_template(
        "points/public_person.html", region=region, town=town, period=period, name=name,
        user_id=user_id, lines=lines, total=sum(r.delta for r in rows), by_event=by_event,
        events=EVENTS, note=PUBLIC_NOTE)
