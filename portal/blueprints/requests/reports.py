"""Staff pages of 民情诉求 built on the lists and figures: overdue lists per level, the figures of
a region for a period, the 收集问题台账 (XLSX) and the town's settings (deadlines, reopen window,
categories, departments)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from sqlalchemy import select

from portal.blueprints.regions.models import Region
from portal.blueprints.requests import bp
from portal.blueprints.requests import services as svc
from portal.blueprints.requests.forms import OptionForm, RequestSettingsForm
from portal.blueprints.requests.models import (
    LEVEL_MOTTOS,
    LEVEL_NAMES,
    RATINGS,
    SOURCES,
    STATUSES,
    TOP,
    Department,
    RequestCategory,
)
from portal.clock import local_midnight_utc, local_today, to_local, utcnow
from portal.errors import ServiceError, attempt
from portal.extensions import db
from portal.scope import current_scope, get_region_or_404, get_town_or_404
from portal.xlsx import download_xlsx


# -- helpers ------------------------------------------------------------------------------------
def late_text(delta: timedelta) -> str:
    """How late, for a phone row: 3 天 5 小时 / 2 小时 10 分 / 5 分钟."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} 天 {hours} 小时" if hours else f"{days} 天"
    if hours:
        return f"{hours} 小时 {mins} 分" if mins else f"{hours} 小时"
    return f"{mins} 分钟"


def _default_region_id(scope) -> int:
    """The top of the user's view scope (the first town for a deployment-wide admin)."""
    tops = scope.top_paths("view")
    if not tops:
        abort(403)
    if tops[0] == "/":
        town_id = db.session.scalar(
            select(Region.id).where(Region.parent_id.is_(None)).order_by(Region.id).limit(1))
        if town_id is None:
            abort(404)
        return town_id
    return int(tops[0].strip("/").split("/")[-1])


def _region_arg():
    scope = current_scope()
    if not scope.view_grants:
        abort(403)
    region_id = request.args.get("region", type=int)
    return get_region_or_404(region_id if region_id is not None else _default_region_id(scope))


DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)


def _day(value: str | None, what: str, default: date) -> date:
    value = (value or "").strip()
    if not value:
        return default
    try:
        if not DATE_RE.match(value):
            raise ValueError
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise ServiceError(f"{what}格式不对，请按 2026-11-01 的样子填写。", what) from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ServiceError(f"{what}超出范围（2000 年到 2099 年）。", what)
    return day


class Period:
    """A period of whole local days [start, end], from ``?start=&end=`` (default: this month
    up to today); ``start_utc`` / ``end_utc`` bound it as stored instants, end exclusive."""

    def __init__(self, args, now: datetime):
        today = local_today(now)
        self.start_text, self.end_text = args.get("start", ""), args.get("end", "")
        self.start = _day(self.start_text, "开始日期", today.replace(day=1))
        self.end = _day(self.end_text, "结束日期", today)
        if self.start > self.end:
            raise ServiceError("开始日期不能晚于结束日期。", "开始日期")
        self.start_utc = local_midnight_utc(self.start)
        self.end_utc = local_midnight_utc(self.end + timedelta(days=1))

    @property
    def label(self) -> str:
        return f"{self.start:%Y-%m-%d} 至 {self.end:%Y-%m-%d}"


def _presets(today: date) -> list[tuple[str, date, date]]:
    first = today.replace(day=1)
    last_month_end = first - timedelta(days=1)
    return [("本月", first, today), ("上月", last_month_end.replace(day=1), last_month_end),
            ("今年", today.replace(month=1, day=1), today),
            ("近一年", today - timedelta(days=364), today)]


def _period_error(region, error: ServiceError):
    """The figures page with the period form and its error, nothing counted (422)."""
    now = utcnow()
    ancestors, children = svc.region_family(region)
    return render_template(
        "requests/stats.html", region=region, error=error.message, error_field=error.field,
        fig=None,
        start=request.args.get("start", ""), end=request.args.get("end", ""),
        trail=[a for a in ancestors if current_scope().can_view(a.path)], rows=[],
        presets=_presets(local_today(now)), children=children), 422


# -- overdue lists ------------------------------------------------------------------------------
@bp.get("/requests/overdue")
def overdue():
    """Requests whose response deadline at a level passed without a response, per level."""
    scope = current_scope()
    if not scope.view_grants:
        abort(403)
    if request.args.get("level", "") == "":
        level = min((svc.QUEUE_LEVEL.get(gr.role, 0) for gr in scope.view_grants), default=0)
    else:
        level = request.args.get("level", type=int)
        if level is None or not 0 <= level <= TOP:
            abort(404)
    now = utcnow()
    counts = svc.overdue_counts(scope, now)
    rows, more = svc.overdue(scope, level, now)
    ids = [svc.node_id(r.path, k) for r, _ in rows for k in {level, 2}]
    names = svc.region_names(ids)
    items = []
    for req, eff in rows:
        node = names.get(svc.node_id(req.path, level), "")
        village = names.get(svc.node_id(req.path, 2), "") if level < 2 else ""
        items.append((req, eff, node, village, late_text(now - req.dues[level])))
    return render_template("requests/overdue.html", level=level, counts=counts, items=items,
                           more=more, now=now, level_names=LEVEL_NAMES)


# -- figures ------------------------------------------------------------------------------------
def _report_args():
    """(region, now, period, error page) of a report: ``?region=&start=&end=``; the error page
    (422, the message on the period form) when the period is refused, else None."""
    region = _region_arg()
    now = utcnow()
    try:
        return region, now, Period(request.args, now), None
    except ServiceError as e:
        return region, now, None, _period_error(region, e)


@bp.get("/requests/stats")
def stats():
    region, now, period, error = _report_args()
    if error:
        return error
    ancestors, children = svc.region_family(region)
    scope = current_scope()
    fig = svc.figures(region, period.start_utc, period.end_utc, now)
    rows = svc.breakdown(region, children, period.start_utc, period.end_utc, now)
    return render_template(
        "requests/stats.html", region=region, fig=fig, rows=rows, error=None,
        start=f"{period.start:%Y-%m-%d}", end=f"{period.end:%Y-%m-%d}", period=period,
        trail=[a for a in ancestors if scope.can_view(a.path)], children=children,
        presets=_presets(local_today(now)), level_names=LEVEL_NAMES, mottos=LEVEL_MOTTOS,
        ratings=RATINGS)


# -- 收集问题台账 (XLSX) -----------------------------------------------------------------------------
#: (header, column width in characters)
LEDGER_COLUMNS = (
    ("编号", 13), ("登记时间", 17), ("村", 10), ("组", 10), ("邻", 11), ("户主", 8),
    ("住址", 18), ("类别", 9), ("诉求内容", 40), ("来源", 9), ("状态", 12), ("当前层级", 8),
    ("负责人", 8), ("承办部门", 14), ("接单人", 8), ("办结时间", 17), ("办结层级", 8),
    ("答复", 40), ("满意度", 9),
)
DATE_FORMAT = "yyyy-mm-dd hh:mm"
#: Mobile numbers someone typed into a description or an answer are masked in the export.
PHONE_IN_TEXT = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def _text(ws, value: str | None, wrap: bool = False) -> WriteOnlyCell:
    """A text cell: never a formula (a description starting with "=" stays text), without the
    control characters XLSX cannot hold, phone numbers masked."""
    value = PHONE_IN_TEXT.sub(r"\1****\2", ILLEGAL_CHARACTERS_RE.sub("", value or ""))
    cell = WriteOnlyCell(ws, value=value)
    cell.data_type = "s"
    if wrap:
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    return cell


def _when(ws, value: datetime | None) -> WriteOnlyCell:
    """A real Excel date-time, in local time."""
    cell = WriteOnlyCell(ws, value=to_local(value).replace(tzinfo=None) if value else None)
    cell.number_format = DATE_FORMAT
    return cell


def _ledger_file(region, period: Period, now: datetime):
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("收集问题台账")
    ws.freeze_panes = "A2"
    for i, (_, width) in enumerate(LEDGER_COLUMNS, 1):
        ws.column_dimensions[get_column_letter(i)].width = width
    bold = Font(bold=True)
    header = []
    for title, _ in LEDGER_COLUMNS:
        cell = WriteOnlyCell(ws, value=title)
        cell.font = bold
        header.append(cell)
    ws.append(header)
    for req, eff, names, extra in svc.ledger_rows(region, period.start_utc, period.end_utc, now):
        def node(level, req=req, names=names):
            return names.get(svc.node_id(req.path, level), "")

        status = STATUSES[req.status]
        if eff.overdue:
            status += "（已逾期）"
        ws.append([
            _text(ws, req.number), _when(ws, req.created_at), _text(ws, node(2)),
            _text(ws, node(1)), _text(ws, node(0)), _text(ws, extra["head"]),
            _text(ws, extra["address"]), _text(ws, extra["category"]),
            _text(ws, req.description, wrap=True), _text(ws, SOURCES.get(req.source, "")),
            _text(ws, status), _text(ws, LEVEL_NAMES[eff.level]), _text(ws, extra["handler"]),
            _text(ws, extra["department"]), _text(ws, extra["helper"]),
            _when(ws, req.closed_at),
            _text(ws, LEVEL_NAMES[req.closed_level] if req.closed_level is not None else ""),
            _text(ws, req.answer, wrap=True), _text(ws, RATINGS.get(req.rating, "")),
        ])
    return wb


@bp.get("/requests/export.xlsx")
def export():
    """收集问题台账 of a region for a period: requests created in it, oldest first."""
    region, now, period, error = _report_args()
    if error:
        return error
    filename = f"收集问题台账_{region.name}_{period.start:%Y-%m-%d}_{period.end:%Y-%m-%d}.xlsx"
    fallback = f"ledger_{period.start:%Y-%m-%d}_{period.end:%Y-%m-%d}.xlsx"
    return download_xlsx(_ledger_file(region, period, now), filename, fallback)



# -- settings -----------------------------------------------------------------------------------
OPTION_KINDS = {"categories": (RequestCategory, "诉求类别"), "departments": (Department, "承办部门")}


def _settings_page(town, status: int = 200, settings_form=None, failed=None):
    """The settings page; ``failed`` = (kind, item id or None, form) re-shown with its error."""
    scope = current_scope()
    can_edit = scope.allows("town", town.path)
    row = svc.town_settings(town.id)
    if settings_form is None:
        settings_form = RequestSettingsForm(formdata=None, obj=row)
    lists = {}
    for kind, (model, _label) in OPTION_KINDS.items():
        items = []
        for item in svc.options(model, town.id, active_only=False):
            form = None
            if can_edit:
                if failed and failed[0] == kind and failed[1] == item.id:
                    form = failed[2]
                else:
                    form = OptionForm(formdata=None, obj=item, prefix=f"{kind[0]}{item.id}")
            items.append((item, form))
        add = failed[2] if failed and failed[0] == kind and failed[1] is None else \
            OptionForm(formdata=None, prefix=f"{kind[0]}new")
        lists[kind] = (items, add if can_edit else None)
    return render_template("requests/settings.html", town=town, row=row, can_edit=can_edit,
                           form=settings_form, lists=lists, kinds=OPTION_KINDS,
                           level_names=LEVEL_NAMES), status


@bp.route("/requests/settings", methods=["GET", "POST"])
def settings():
    if request.method == "GET":
        return _settings_page(get_town_or_404(request.args.get("town", type=int)))
    town = get_town_or_404(request.args.get("town", type=int), "town")
    form = RequestSettingsForm()
    if form.validate_on_submit():
        hours = [form.hours_neighborhood.data, form.hours_group.data, form.hours_village.data,
                 form.hours_town.data]
        if attempt(form, lambda: svc.save_settings(current_user, town, hours,
                                                   form.reopen_days.data)):
            db.session.commit()
            flash("时限已保存，对此后提交或上报的诉求生效。")
            return redirect(url_for("requests.settings", town=town.id), 303)
    return _settings_page(town, 422, settings_form=form)


def _save_option(town, kind: str, item):
    model, label = OPTION_KINDS[kind]
    prefix = f"{kind[0]}{item.id if item else 'new'}"
    form = OptionForm(prefix=prefix)
    if form.validate_on_submit():
        active = form.active.data if item is not None else True
        if attempt(form, lambda: svc.save_option(current_user, town, model, item, form.name.data,
                                                 active=active,
                                                 is_dispute=form.is_dispute.data)):
            db.session.commit()
            flash(f"{label}已保存。")
            return redirect(url_for("requests.settings", town=town.id, _anchor=kind), 303)
    return _settings_page(town, 422, failed=(kind, item.id if item else None, form))


@bp.post("/requests/settings/<any(categories, departments):kind>")
def settings_add(kind: str):
    town = get_town_or_404(request.args.get("town", type=int), "town")
    return _save_option(town, kind, None)


@bp.post("/requests/settings/<any(categories, departments):kind>/<int:item_id>")
def settings_option(kind: str, item_id: int):
    item = db.session.get(OPTION_KINDS[kind][0], item_id)
    if item is None:
        abort(404)
    town = get_town_or_404(item.town_id, "town")
    return _save_option(town, kind, item)
