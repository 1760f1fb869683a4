"""台账 pages: the index (pick a region and a period, download the three ledgers) and the two
XLSX downloads of this domain. Who may: see ``ledgers.py``."""

from __future__ import annotations

from datetime import timedelta

from flask import abort, render_template, request
from sqlalchemy import select

from portal.blueprints.ledgers import bp
from portal.blueprints.ledgers import ledgers as svc
from portal.blueprints.points.ledger import parse_period, period_choices
from portal.blueprints.points.reviews import _pick_region
from portal.blueprints.points.services import Period, month_period
from portal.blueprints.regions.models import Region
from portal.clock import local_today, utcnow
from portal.errors import ServiceError
from portal.extensions import db
from portal.scope import current_scope, get_region_or_404
from portal.xlsx import download_xlsx


def last_month(today) -> Period:
    day = today.replace(day=1) - timedelta(days=1)
    return month_period(day.year, day.month)


def _period_arg(today) -> Period:
    """``?period=`` ("2026-10", "2026Q3", "2026"); last month when absent."""
    asked = request.args.get("period")
    return parse_period(asked) if asked else last_month(today)


def _need_supervisor(scope) -> None:
    """邻长, volunteers and people without a post have no ledgers (403)."""
    if not scope.top_paths("supervise"):
        abort(403)


def _region_arg(scope) -> Region:
    """``?region=`` (default: the user's top region), supervised by the user (404 outside their
    subtrees, 403 visible but not supervised)."""
    _need_supervisor(scope)
    region_id = request.args.get("region", type=int)
    if region_id is None:
        top = scope.top_paths("supervise")[0]
        if top == "/":
            region_id = db.session.scalar(select(Region.id).where(Region.parent_id.is_(None))
                                          .order_by(Region.id).limit(1))
            if region_id is None:
                abort(404)
        else:
            region_id = int(top.strip("/").split("/")[-1])
    return get_region_or_404(region_id, "supervise")


def _index_page(scope, pick, period: Period | None, error: str | None = None):
    today = local_today()
    return render_template(
        "ledgers/index.html", pick=pick, region=pick.region, period=period, error=error,
        period_choices=period_choices(today, period), default_key=last_month(today).key,
        can_manage=scope.allows("manage", pick.region.path)), 422 if error else 200


@bp.get("/")
def index():
    scope = current_scope()
    _need_supervisor(scope)
    pick = _pick_region(scope, "supervise")
    try:
        period = _period_arg(local_today())
    except ServiceError as e:
        return _index_page(scope, pick, None, e.message)
    return _index_page(scope, pick, period)


@bp.get("/chiefs.xlsx")
def chiefs_export():
    """邻长信息台账 of a region for a month, quarter or year."""
    scope = current_scope()
    region = _region_arg(scope)
    try:
        period = _period_arg(local_today())
    except ServiceError as e:  # a hand-edited link: the index page with the message
        return _index_page(scope, _pick_region(scope, "supervise"), None, e.message)
    start_utc, end_utc = period.bounds
    wb = svc.chiefs_workbook(region, period.label, period.start, period.last, start_utc,
                                 end_utc, utcnow())
    return download_xlsx(wb, f"邻长信息台账_{region.name}_{period.key}.xlsx",
                             f"chiefs_{period.key}.xlsx")


@bp.get("/resources.xlsx")
def resources_export():
    """辖区社会资源台账 of a region: the registry and the 议事场所, as they are now."""
    scope = current_scope()
    region = _region_arg(scope)
    wb = svc.resources_workbook(region, utcnow(),
                                    lambda path: scope.allows("manage", path))
    return download_xlsx(wb, f"辖区社会资源台账_{region.name}.xlsx", "resources.xlsx")


from portal.blueprints.ledgers import resources  # noqa: E402,F401  (the registry's pages)
