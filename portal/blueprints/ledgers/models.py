"""Tables of the ledgers domain."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, Index, text
from sqlalchemy.orm import Mapped, mapped_column

from portal.blueprints.duties.models import DutyLog
from portal.blueprints.requests.models import Request
from portal.extensions import db

# == import ==================================================================================
# (roster import)


# == social resources ========================================================================
# (辖区社会资源)


# == dashboard ===============================================================================
# (figures of a scope)
# Monthly duty-log counts of closed months, per 邻, so that a dashboard's 12-month trend does not
# count millions of logs on every view. A town's month is trusted only while its mark says it was
# filled at the mark's current version; duties.services bumps the version (in the same
# transaction) whenever a log of a closed day is added (back-dated) or voided. The running month
# is cached up to its last closed day, so that only today's logs are counted live. The rules are in
# ledgers/dashboard.py ("the monthly cache").
class DutyMonth(db.Model):
    """Non-voided duty logs of one 邻 in one closed month (Asia/Shanghai), as last counted."""

    __tablename__ = "duty_months"
    __table_args__ = (
        # a town's months (the trends; with its 邻 ids, this month's counts per 邻), index-only
        Index("ix_duty_months_town_month", "town_id", "month",
              postgresql_include=["neighborhood_id", "contacts", "visits"]),
    )

    neighborhood_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), primary_key=True)
    #: The first day of the local month.
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    #: The 邻's town (regions never move, so it stays true).
    town_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    #: 走访服务群众: every non-voided log.
    contacts: Mapped[int] = mapped_column(nullable=False)
    #: Of which 上门.
    visits: Mapped[int] = mapped_column(nullable=False)


class DutyMonthMark(db.Model):
    """Whether a town's :class:`DutyMonth` rows of a month can be trusted: they can when
    ``filled_version`` equals ``version``; they then count the logs before ``filled_until``
    (the month's end once it closed; for the running month, a local midnight of it)."""

    __tablename__ = "duty_month_marks"

    town_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    #: Bumped by every change to the month's logs after the month closed.
    version: Mapped[int] = mapped_column(nullable=False, default=0)
    #: The version the rows were counted at; NULL while never filled.
    filled_version: Mapped[int | None] = mapped_column()
    filled_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: The rows count the month's logs that occurred before this instant (UTC; a local
    #: midnight); NULL while never filled.
    filled_until: Mapped[datetime | None] = mapped_column(DateTime)


#: The contacts and 上门 of a 邻 in a period counted from the index alone (the dashboards).
Index("ix_duty_logs_neighborhood_occurred_method", DutyLog.neighborhood_id, DutyLog.occurred_at,
      postgresql_include=["method"], postgresql_where=text("voided_at IS NULL"),
      sqlite_where=text("voided_at IS NULL"))

#: The dashboards read every request of a town (period figures, 12 months, overdue now) from this
#: index alone: ix_requests_path_created lacks closed_at, level and due_1..3, and a town's
#: requests lie scattered over most of the table's pages.
Index("ix_requests_path_figures", Request.path, Request.created_at,
      postgresql_include=["status", "level", "closed_at", "closed_level", "missed", "due_0",
                          "due_1", "due_2", "due_3"])
