"""好邻 / 标兵 commendations: a campaign ("2026 年度江背好邻") with a quota; nominations of 邻长
with their deeds, a photo and a statistics snapshot from the records; a public notice period
(公示) in which anyone may object; staff resolve each objection; town staff approve or reject once
the period is over and no objection is open.

The snapshot is taken when the nomination is made (or refreshed before the notice opens) and kept:
what was published is what was approved.
"""

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.clock import utcnow
from portal.extensions import db
from portal.models import IdMixin, TimestampMixin
from portal.pathcol import PathString

CAMPAIGN_STATUSES = {"nominating": "推荐中", "notice": "公示中", "closed": "已结束"}
NOMINATION_STATUSES = {"nominated": "已推荐", "approved": "已评定", "rejected": "未通过",
                       "withdrawn": "已撤回"}
#: What the statistics snapshot holds, in the order posters show it.
STAT_LABELS = {"households": "联系户", "visits": "走访服务", "requests": "办理诉求",
               "disputes": "调解纠纷", "points": "积分"}
POSTER_DESIGNS = {"red": "红色《好邻 幸福同行》", "plain": "简洁白底"}
#: The 四个一 every 邻长 is issued, in the order the pages list them.
KIT_ITEMS = {"vest": "红马甲", "card": "工作证", "policy": "政策明白卡", "contact": "联户信息卡"}


class Campaign(IdMixin, TimestampMixin, db.Model):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint("quota BETWEEN 1 AND 1000", name="quota"),
        CheckConstraint("status IN ('nominating','notice','closed')", name="status"),
        CheckConstraint("notice_end >= notice_start", name="notice"),
        Index("ix_campaigns_path", "path"),
    )

    town_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    #: The campaign's region (a town, or a village for a village's own campaign).
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    path: Mapped[str] = mapped_column(PathString, nullable=False)
    title: Mapped[str] = mapped_column(String(60), nullable=False)
    #: Title printed on the posters, e.g. "江背好邻" / "优秀邻长".
    honour: Mapped[str] = mapped_column(String(20), nullable=False)
    quota: Mapped[int] = mapped_column(nullable=False)
    #: Records counted in the statistics snapshot (local dates, end exclusive).
    period_start: Mapped[date] = mapped_column(Date, nullable=False)
    period_end: Mapped[date] = mapped_column(Date, nullable=False)
    #: The 公示 period (local dates, both inclusive): objections only inside it, decisions only
    #: after it.
    notice_start: Mapped[date] = mapped_column(Date, nullable=False)
    notice_end: Mapped[date] = mapped_column(Date, nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="nominating")
    design: Mapped[str] = mapped_column(String(10), nullable=False, default="red")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)

    @property
    def status_label(self) -> str:
        return CAMPAIGN_STATUSES[self.status]

    @property
    def design_label(self) -> str:
        return POSTER_DESIGNS[self.design]


class Nomination(IdMixin, TimestampMixin, db.Model):
    __tablename__ = "nominations"
    __table_args__ = (
        UniqueConstraint("campaign_id", "user_id", name="uq_nominations_person"),
        CheckConstraint("status IN ('nominated','approved','rejected','withdrawn')",
                        name="status"),
        Index("ix_nominations_path", "path"),
    )

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"), nullable=False)
    #: The 邻长's 邻 path (scope, and the village and group on the poster).
    path: Mapped[str] = mapped_column(PathString, nullable=False)
    deeds: Mapped[str] = mapped_column(Text, nullable=False)
    #: File name under instance/uploads/commendation/ (re-encoded JPEG without EXIF).
    photo: Mapped[str | None] = mapped_column(String(64))
    #: {"households": n, "visits": n, "requests": n, "disputes": n, "points": n}
    stats: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    #: The 履职评议 (优秀) the nomination came from, if any.
    review_id: Mapped[int | None] = mapped_column(ForeignKey("reviews.id"))
    nominated_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="nominated")
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)
    decision_note: Mapped[str] = mapped_column(String(200), nullable=False, default="")

    campaign = relationship("Campaign", lazy="raise")
    user = relationship("User", foreign_keys=[user_id], lazy="raise")

    @property
    def status_label(self) -> str:
        return NOMINATION_STATUSES[self.status]


class Objection(IdMixin, db.Model):
    """An objection lodged during the 公示 (by anyone, without an account) and its resolution."""

    __tablename__ = "objections"
    __table_args__ = (
        CheckConstraint("resolved_at IS NULL OR resolution <> ''", name="resolution"),
        Index("ix_objections_nomination", "nomination_id"),
    )

    nomination_id: Mapped[int] = mapped_column(ForeignKey("nominations.id"), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    #: How to reach the objector, optional; shown to staff only.
    contact: Mapped[str] = mapped_column(String(60), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: Upheld: the nomination cannot be approved.
    upheld: Mapped[bool | None]
    resolution: Mapped[str] = mapped_column(Text, nullable=False, default="")


class KitIssue(IdMixin, db.Model):
    """One of the 四个一 handed to a 邻长 (per post: a new post is issued anew) and on which
    day; the 邻长信息台账 reads "四个一 issued" from here."""

    __tablename__ = "kit_issues"
    __table_args__ = (
        UniqueConstraint("post_id", "item", name="uq_kit_issues_post_item"),
        CheckConstraint("item IN ('vest','card','policy','contact')", name="item"),
    )

    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"), nullable=False)
    item: Mapped[str] = mapped_column(String(10), nullable=False)
    #: The local day it was handed over (as staff recorded it).
    issued_on: Mapped[date] = mapped_column(Date, nullable=False)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)

    @property
    def label(self) -> str:
        return KIT_ITEMS[self.item]


class PolicyText(IdMixin, TimestampMixin, db.Model):
    """The town's text on the 政策明白卡 (below its 三张清单), edited by town staff."""

    __tablename__ = "policy_texts"
    __table_args__ = (UniqueConstraint("town_id", name="uq_policy_texts_town_id"),)

    town_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    #: The card's heading, e.g. "江背镇惠民政策明白卡".
    title: Mapped[str] = mapped_column(String(30), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False, default="")
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
