from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.clock import utcnow
from portal.extensions import db
from portal.models import IdMixin, TimestampMixin

CHECKLIST_KINDS = {"duty": "权责清单 · 七员", "deliberation": "议事清单 · 六议",
                   "negative": "负面清单 · 六不得"}
METHODS = {"visit": "上门", "phone": "电话", "wechat": "微信", "other": "其他"}
CATEGORIES = {"special": "特殊人群户", "ordinary": "其他联系户"}
RULE_METHODS = {"visit": "上门走访", "any": "上门或电话/微信联系"}
PERIODS = {"week": "每周", "month": "每月", "quarter": "每季度"}


class ChecklistItem(IdMixin, TimestampMixin, db.Model):
    """One line of the 三张清单 of a town: a 七员 duty, a 六议 category or a 六不得 prohibition."""

    __tablename__ = "checklist_items"
    __table_args__ = (
        CheckConstraint("kind IN ('duty','deliberation','negative')", name="kind"),
        Index("ix_checklist_items_town_kind", "town_id", "kind", "sort"),
    )

    town_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    kind: Mapped[str] = mapped_column(String(12), nullable=False)
    title: Mapped[str] = mapped_column(String(40), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    sort: Mapped[int] = mapped_column(default=0, nullable=False)
    #: Retired items stay so old duty logs keep their meaning.
    active: Mapped[bool] = mapped_column(default=True, nullable=False)


class ContactRule(IdMixin, TimestampMixin, db.Model):
    """常态化联系机制: one way a household of a category counts as contacted on time.

    A household is on time when any active rule of its category is met in the current period.
    """

    __tablename__ = "contact_rules"
    __table_args__ = (
        CheckConstraint("category IN ('special','ordinary')", name="category"),
        CheckConstraint("method IN ('visit','any')", name="method"),
        CheckConstraint("period IN ('week','month','quarter')", name="period"),
        Index("ix_contact_rules_town_id", "town_id"),
    )

    town_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    category: Mapped[str] = mapped_column(String(10), nullable=False)
    #: "visit": only 上门 counts; "any": 上门, 电话, 微信 or 其他 count.
    method: Mapped[str] = mapped_column(String(10), nullable=False)
    period: Mapped[str] = mapped_column(String(10), nullable=False)
    active: Mapped[bool] = mapped_column(default=True, nullable=False)

    @property
    def label(self) -> str:
        return f"{PERIODS[self.period]}{RULE_METHODS[self.method]}至少 1 次"


class DutyLog(IdMixin, db.Model):
    """履职记录: one duty a 三长 performed for a household."""

    __tablename__ = "duty_logs"
    __table_args__ = (
        CheckConstraint("method IN ('visit','phone','wechat','other')", name="method"),
        Index("ix_duty_logs_household_occurred", "household_id", "occurred_at"),
        # the counts skip voided logs: partial, so they stay index-only scans
        Index("ix_duty_logs_neighborhood_occurred", "neighborhood_id", "occurred_at",
              postgresql_where=text("voided_at IS NULL"), sqlite_where=text("voided_at IS NULL")),
        Index("ix_duty_logs_user_occurred", "user_id", "occurred_at",
              postgresql_where=text("voided_at IS NULL"), sqlite_where=text("voided_at IS NULL")),
    )

    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), nullable=False)
    #: The 邻 the household belonged to when the duty was done (credit stays there on a move).
    neighborhood_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    duty_item_id: Mapped[int] = mapped_column(ForeignKey("checklist_items.id"), nullable=False)
    method: Mapped[str] = mapped_column(String(10), nullable=False)
    #: When the duty happened (UTC); defaults to now, may be back-dated.
    occurred_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    note: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    #: File name under instance/uploads/duty/, downscaled JPEG without EXIF.
    photo: Mapped[str | None] = mapped_column(String(64))
    #: One-time token from the form; unique so a resubmitted form cannot log twice.
    form_token: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    #: Voided (作废) by its author or staff, with the reason: kept for the record, counted
    #: nowhere, its points taken back.
    voided_at: Mapped[datetime | None] = mapped_column(DateTime)
    voided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    void_reason: Mapped[str] = mapped_column(String(200), nullable=False, default="",
                                             server_default="")

    household = relationship("Household", lazy="raise")
    user = relationship("User", foreign_keys=[user_id], lazy="raise")
    duty_item = relationship("ChecklistItem", lazy="raise")

    @property
    def method_label(self) -> str:
        return METHODS[self.method]
