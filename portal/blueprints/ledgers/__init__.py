"""台账 and dashboards: Excel import of household and 三长 rosters, the three ledgers as XLSX
(邻长信息台账, 收集问题台账, 辖区社会资源台账) with the registry of social resources behind the
third, and the figures of a scope at a glance with a monthly PDF report."""

from flask import Blueprint

bp = Blueprint("ledgers", __name__, url_prefix="/ledgers")

from portal.blueprints.ledgers import (  # noqa: E402,F401
    dashboard_views,
    import_views,
    ledger_views,
)
