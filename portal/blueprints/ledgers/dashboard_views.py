"""The dashboard of a scope (town, village, 片, group) for a period, and its monthly PDF report."""

from __future__ import annotations

import time
from datetime import datetime

from flask import abort, current_app, redirect, render_template, request, url_for
from sqlalchemy import select

from portal.blueprints.ledgers import bp, charts
from portal.blueprints.ledgers import dashboard as svc
from portal.blueprints.points.ledger import parse_period as points_period
from portal.blueprints.points.ledger import period_choices as points_choices
from portal.blueprints.points.services import Period, month_period
from portal.blueprints.regions.models import Region
from portal.blueprints.requests.models import LEVEL_MOTTOS
from portal.blueprints.requests.services import region_family
from portal.clock import local_today, utcnow
from portal.errors import ServiceError
from portal.extensions import db
from portal.scope import current_scope, get_region_or_404

PERIOD_ERROR = "统计期应写成 2026-11（月）、2026Q4（季度）或 2026（全年）。"


def parse_period(value: str | None, now: datetime) -> Period:
    """``?period=``: "2026-11", "2026Q4" or "2026" (read as the points pages read it); this
    month when empty. A period that has not begun is refused."""
    today = local_today(now)
    if not (value or "").strip():
        return month_period(today.year, today.month)
    try:
        period = points_period(value)
    except ServiceError:
        raise ServiceError(PERIOD_ERROR, "period") from None
    if period.start > today:
        raise ServiceError("这个统计期还没有开始，请选择已经开始的月份、季度或年度。", "period")
    return period


def period_choices(now: datetime) -> list[tuple[str, str]]:
    """The picker: the last 12 months, this and last quarter, this and last year."""
    return points_choices(local_today(now), None, months=12, quarters=2)


def _default_region_id(scope) -> int:
    tops = scope.top_paths("supervise")
    if tops == ["/"] or (tops and tops[0] == "/"):
        town_id = db.session.scalar(select(Region.id).where(Region.parent_id.is_(None))
                                    .order_by(Region.name).limit(1))
        if town_id is None:
            abort(404)
        return town_id
    return int(tops[0].strip("/").split("/")[-1])


def _load():
    """(region, period, error, ancestors, children, now) of ``?region=&period=``; a 邻 and
    roles that do not supervise are dealt with by the caller."""
    scope = current_scope()
    if not scope.top_paths("supervise"):
        # 邻长 and volunteers: the figures are for those who lead them; no post: nothing here
        abort(403 if scope.grants else 404)
    region_id = request.args.get("region", type=int)
    if region_id is None:
        if request.args.get("region"):
            abort(404)
        region_id = _default_region_id(scope)
    region = get_region_or_404(region_id, "supervise")
    now = utcnow()
    error = None
    try:
        period = parse_period(request.args.get("period"), now)
    except ServiceError as e:
        error = e.message if hasattr(e, "message") else str(e)
        period = parse_period(None, now)
    return region, period, error, now


def _issuer(region: Region, ancestors: list[Region]) -> str:
    """Who issues the report: 镇人民政府 / 街道办事处 for a town, the village's 村民委员会 /
    社区居民委员会 below."""
    if region.level == "town":
        return region.name + ("办事处" if region.name.endswith("街道") else "人民政府")
    village = region if region.level == "village" else next(
        (a for a in ancestors if a.level == "village"), None)
    if village is None:
        return region.name
    return village.name + ("居民委员会" if village.name.endswith("社区") else "村民委员会")


def _context(region, period, now):
    ancestors, children = region_family(region)
    start, end = period.bounds
    window = svc.window_for(period.last, now)
    board = svc.build(region, children, start, end, window, now)
    scope = current_scope()
    return {
        "region": region, "period": period, "board": board, "fig": board.total,
        "rows": board.rows, "trend": board.trend, "levels_short": svc.LEVELS,
        "charts": charts.trend_charts(board.trend), "mottos": LEVEL_MOTTOS,
        "trail": [a for a in ancestors if scope.allows("supervise", a.path)],
        "ancestors": ancestors, "now": now, "month_labels": charts.month_labels(window),
        "issuer": _issuer(region, ancestors), "today": local_today(now),
        "chief_roles": svc.CHIEF_ROLES, "level_colors": charts.LEVEL_COLORS,
    }


@bp.get("/dashboard")
def dashboard():
    region, period, error, now = _load()
    if region.level == "neighborhood":
        return redirect(url_for("duties.neighborhood", region_id=region.id))
    ctx = _context(region, period, now)
    html = render_template("ledgers/dashboard.html", error=error, choices=period_choices(now),
                           **ctx)
    _keep_cache(ctx["board"])
    return html, 422 if error else 200


def _keep_cache(board) -> None:
    """Commit the months this view counted into the cache (after rendering: a commit expires
    the loaded regions)."""
    if board.filled:
        db.session.commit()


@bp.get("/dashboard/report.pdf")
def dashboard_report():
    from portal.pdf import pdf_response, render_pdf

    region, period, error, now = _load()
    if error:
        abort(422, error)
    if region.level == "neighborhood":
        abort(404)
    ctx = _context(region, period, now)
    html = render_template("ledgers/report_pdf.html", **ctx)
    _keep_cache(ctx["board"])
    t = time.perf_counter()
    data = render_pdf(html)
    current_app.logger.info("dashboard report %s %s: %.2fs, %d bytes", region.id, period.key,
                            time.perf_counter() - t, len(data))
    return pdf_response(data, f"{region.name}{period.label}工作报表.pdf")


@bp.cli.command("refresh-figures")
def refresh_figures():
    """Forget the dashboards' cached monthly counts (run after changing duty logs in bulk,
    outside the duties services): they are counted again on the next view."""
    import click

    n = svc.refresh_all()
    db.session.commit()
    click.echo(f"已清除 {n} 个月度缓存标记；下次打开工作概况时重新统计。")
