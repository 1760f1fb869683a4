"""Tables of the ledgers domain."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, DateTime, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.blueprints.duties.models import DutyLog
from portal.blueprints.requests.models import Request
from portal.extensions import db
from portal.models import IdMixin, TimestampMixin
from portal.pathcol import PathString

# == import ==================================================================================
# (roster import)


# == social resources ========================================================================
# (辖区社会资源)
#: Kinds of social resource staff register (code → label); the 议事场所 of the agenda domain
#: join them in the ledger as kind "venue" (edited there, never typed twice).
RESOURCE_KINDS = {"place": "场所", "team": "志愿服务队", "business": "商户企业",
                  "station": "红色驿站", "other": "其他"}
VENUE_KIND_LABEL = "议事场所"


class SocialResource(IdMixin, TimestampMixin, db.Model):
    """One entry of the 辖区社会资源 registry: a place, a volunteer team, a business, a 红色驿站
    … with who to call and what they offer. Deactivated, never deleted (the ledger keeps it)."""

    __tablename__ = "social_resources"
    __table_args__ = (
        CheckConstraint("kind IN ('place','team','business','station','other')", name="kind"),
        Index("ix_social_resources_path", "path"),
    )

    #: The node that registered it (town, village, 片 or 组); the list of a scope is a prefix
    #: range of ``path``.
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    #: The region's path, copied so lists and ledgers are scoped without a join.
    path: Mapped[str] = mapped_column(PathString, nullable=False)
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    name: Mapped[str] = mapped_column(String(60), nullable=False)
    address: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    contact_name: Mapped[str] = mapped_column(String(40), nullable=False, default="")
    #: A mobile (13800138000) or a landline with its area code (0731-86543210), normalised;
    #: shown masked except to staff who manage the resource.
    contact_phone: Mapped[str] = mapped_column(String(20), nullable=False, default="")
    #: 服务内容: what they offer.
    services: Mapped[str] = mapped_column(String(500), nullable=False)
    #: Opening hours and other notes (free text, optional).
    opening: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    active: Mapped[bool] = mapped_column(nullable=False, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    region = relationship("Region", lazy="raise")

    @property
    def kind_label(self) -> str:
        return RESOURCE_KINDS.get(self.kind, self.kind)


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
