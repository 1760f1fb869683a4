"""积分: rules, an append-only ledger, 六不得 breaches, and the rewards store.

**The ledger.** Every point is a :class:`PointsEntry` row that names the rule, the record that
earned it (``source_type``/``source_id``), who wrote it (``operator_id``; NULL for an automatic
award) and why. A balance is ``SUM(delta)``, never a stored number. A mistake is fixed by a
reversing entry (``kind`` "reversal", ``reverses_id`` → the entry it cancels), never by an edit;
the database allows one reversal per entry.

**Rules** are versioned: a change writes a new :class:`PointsRule` row for the same town, event and
item with a later ``effective_from``; an event is priced by the version in force on its local date,
so a change applies from its effective date on and never rewrites the past.
"""

from datetime import date, datetime

from sqlalchemy import (
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
from portal.models import IdMixin
from portal.pathcol import PathString

#: What earns (or costs) points. ``item`` says which checklist kind a rule's item must be.
EVENTS = {
    "duty_log": "记录履职（按七员职责）",
    "request_on_time": "按时响应诉求",
    "request_at_neighborhood": "诉求在邻级办结（微事不出邻）",
    "agenda_raise": "提出议题（上会）",
    "agenda_attend": "参加议事会议",
    "commendation": "获评表彰",
    "breach": "违反负面清单（六不得）",
}
EVENT_ITEM_KIND = {"duty_log": "duty", "breach": "negative"}
KINDS = {"award": "奖励", "reversal": "冲正", "spend": "兑换", "refund": "退还"}
SOURCES = {"duty_log": "履职记录", "request": "民情诉求", "agenda_item": "议题",
           "breach": "负面清单记录", "redemption": "兑换",
           "commendation": "表彰", "entry": "积分记录", "meeting": "议事会议"}


class PointsRule(IdMixin, db.Model):
    __tablename__ = "points_rules"
    __table_args__ = (
        CheckConstraint("points BETWEEN -1000 AND 1000 AND points <> 0", name="points"),
        CheckConstraint("daily_cap IS NULL OR daily_cap > 0", name="daily_cap"),
        CheckConstraint("monthly_cap IS NULL OR monthly_cap > 0", name="monthly_cap"),
        Index("ix_points_rules_town_event", "town_id", "event", "item_id", "effective_from"),
    )

    town_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    event: Mapped[str] = mapped_column(String(24), nullable=False)
    #: A 七员 item (duty_log) or a 六不得 item (breach); NULL for the other events.
    item_id: Mapped[int | None] = mapped_column(ForeignKey("checklist_items.id"))
    #: Points per event; negative for a breach.
    points: Mapped[int] = mapped_column(nullable=False)
    #: Most points (in absolute value) one person may get from this rule in a local day / month.
    daily_cap: Mapped[int | None]
    monthly_cap: Mapped[int | None]
    #: This version prices events from this local date on (until a later version).
    effective_from: Mapped[date] = mapped_column(Date, nullable=False)
    active: Mapped[bool] = mapped_column(nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    item = relationship("ChecklistItem", lazy="raise")

    @property
    def event_label(self) -> str:
        return EVENTS.get(self.event, self.event)


class PointsEntry(IdMixin, db.Model):
    """One line of the ledger. Append-only: nothing updates or deletes a row."""

    __tablename__ = "points_entries"
    __table_args__ = (
        CheckConstraint("kind IN ('award','reversal','spend','refund')", name="kind"),
        CheckConstraint("delta <> 0", name="delta"),
        CheckConstraint("kind <> 'reversal' OR reverses_id IS NOT NULL", name="reversal_target"),
        # one award per person, rule and record (a record saved twice pays once)
        UniqueConstraint("user_id", "rule_id", "source_type", "source_id", "kind",
                         name="uq_points_entries_award"),
        UniqueConstraint("reverses_id", name="uq_points_entries_reverses"),
        Index("ix_points_entries_user_at", "user_id", "at"),
        Index("ix_points_entries_path_at", "path", "at"),
        Index("ix_points_entries_source", "source_type", "source_id"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    town_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    #: Path of the person's post region when earned: rankings per village / town scope by it.
    path: Mapped[str] = mapped_column(PathString, nullable=False)
    kind: Mapped[str] = mapped_column(String(10), nullable=False, default="award")
    delta: Mapped[int] = mapped_column(nullable=False)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("points_rules.id"))
    source_type: Mapped[str] = mapped_column(String(16), nullable=False)
    source_id: Mapped[int] = mapped_column(nullable=False)
    #: Who wrote it by hand (a reversal, a breach, a redemption); NULL for an automatic award.
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    #: When the event happened (caps and periods count by it); ``created_at`` when written.
    at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("points_entries.id"))

    rule = relationship("PointsRule", lazy="raise")
    user = relationship("User", foreign_keys=[user_id], lazy="raise")


class Breach(IdMixin, db.Model):
    """A 负面清单 (六不得) breach recorded by a supervisor against a 邻长, and their answer."""

    __tablename__ = "breaches"
    __table_args__ = (Index("ix_breaches_path_on", "path", "occurred_on"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    #: The 邻长's post region.
    path: Mapped[str] = mapped_column(PathString, nullable=False)
    item_id: Mapped[int] = mapped_column(ForeignKey("checklist_items.id"), nullable=False)
    occurred_on: Mapped[date] = mapped_column(Date, nullable=False)
    evidence: Mapped[str] = mapped_column(Text, nullable=False)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    #: The 邻长's answer (申辩 / 说明).
    response: Mapped[str] = mapped_column(Text, nullable=False, default="")
    responded_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: Withdrawn by staff (its points reversed), with the reason.
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime)
    withdrawn_reason: Mapped[str] = mapped_column(String(200), nullable=False, default="")

    item = relationship("ChecklistItem", lazy="raise")
    user = relationship("User", foreign_keys=[user_id], lazy="raise")


class Reward(IdMixin, db.Model):
    """A reward in the store: a quarterly red-film screening, 村BA tickets, scenic-spot passes."""

    __tablename__ = "rewards"
    __table_args__ = (
        CheckConstraint("cost > 0", name="cost"),
        CheckConstraint("stock >= 0", name="stock"),
    )

    town_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(60), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    cost: Mapped[int] = mapped_column(nullable=False)
    #: Left to give; a redemption takes one in the same UPDATE that checks it (never below 0).
    stock: Mapped[int] = mapped_column(nullable=False)
    valid_from: Mapped[date] = mapped_column(Date, nullable=False)
    valid_until: Mapped[date] = mapped_column(Date, nullable=False)
    active: Mapped[bool] = mapped_column(nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class Redemption(IdMixin, db.Model):
    __tablename__ = "redemptions"
    __table_args__ = (
        CheckConstraint("status IN ('issued','used','cancelled')", name="status"),
        Index("ix_redemptions_user", "user_id", "created_at"),
    )

    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id"), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    path: Mapped[str] = mapped_column(PathString, nullable=False)
    cost: Mapped[int] = mapped_column(nullable=False)
    #: The voucher code shown to staff when the reward is handed over.
    code: Mapped[str] = mapped_column(String(12), nullable=False, unique=True)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="issued")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    reward = relationship("Reward", lazy="raise")
    user = relationship("User", foreign_keys=[user_id], lazy="raise")


#: Results of a 履职评议, best first.
RESULTS = {"excellent": "优秀", "competent": "称职", "basic": "基本称职",
           "incompetent": "不称职"}
#: The supervisor's grade and what it adds to the score.
GRADES = {"A": ("好", 20), "B": ("较好", 15), "C": ("一般", 10), "D": ("差", 0)}


#: A town's thresholds until its staff change them.
DEFAULT_THRESHOLDS = {"excellent_min": 90, "competent_min": 75, "basic_min": 60,
                      "excellent_max_breaches": 0}


class ReviewSettings(db.Model):
    """A town's 履职评议 thresholds: the score a result needs (editable by town staff)."""

    __tablename__ = "review_settings"
    __table_args__ = (
        CheckConstraint("excellent_min > competent_min AND competent_min > basic_min "
                        "AND basic_min >= 0 AND excellent_min <= 100", name="order"),
        CheckConstraint("excellent_max_breaches >= 0", name="breaches"),
    )

    town_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), primary_key=True)
    excellent_min: Mapped[int] = mapped_column(
        nullable=False, default=DEFAULT_THRESHOLDS["excellent_min"])
    competent_min: Mapped[int] = mapped_column(
        nullable=False, default=DEFAULT_THRESHOLDS["competent_min"])
    basic_min: Mapped[int] = mapped_column(nullable=False, default=DEFAULT_THRESHOLDS["basic_min"])
    #: Most 六不得 breaches in the period that still allow 优秀 (0: any breach bars it).
    excellent_max_breaches: Mapped[int] = mapped_column(
        nullable=False, default=DEFAULT_THRESHOLDS["excellent_max_breaches"])


class Review(IdMixin, db.Model):
    """履职评议 of one 邻长 for one period: the metrics as they stood when the supervisor graded,
    the grade and comment, the score and the result by the town's thresholds at that time."""

    __tablename__ = "reviews"
    __table_args__ = (
        UniqueConstraint("user_id", "period_start", "period_end", name="uq_reviews_period"),
        CheckConstraint("grade IN ('A','B','C','D')", name="grade"),
        CheckConstraint("result IN ('excellent','competent','basic','incompetent')",
                        name="result"),
        Index("ix_reviews_path_period", "path", "period_start"),
    )

    town_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    #: Path of the 邻长's (first) 邻: lists and exports scope by it.
    path: Mapped[str] = mapped_column(PathString, nullable=False)
    period_start: Mapped[date] = mapped_column(Date, nullable=False)
    #: Exclusive.
    period_end: Mapped[date] = mapped_column(Date, nullable=False)
    households: Mapped[int] = mapped_column(nullable=False, default=0)
    #: Households whose contact rule was met in every window of the period.
    contacted_on_time: Mapped[int] = mapped_column(nullable=False, default=0)
    requests: Mapped[int] = mapped_column(nullable=False, default=0)
    requests_on_time: Mapped[int] = mapped_column(nullable=False, default=0)
    requests_at_neighborhood: Mapped[int] = mapped_column(nullable=False, default=0)
    requests_closed: Mapped[int] = mapped_column(nullable=False, default=0)
    rated: Mapped[int] = mapped_column(nullable=False, default=0)
    #: Rated 满意 or 基本满意.
    satisfied: Mapped[int] = mapped_column(nullable=False, default=0)
    breaches: Mapped[int] = mapped_column(nullable=False, default=0)
    points: Mapped[int] = mapped_column(nullable=False, default=0)
    grade: Mapped[str] = mapped_column(String(1), nullable=False)
    comment: Mapped[str] = mapped_column(Text, nullable=False, default="")
    score: Mapped[int] = mapped_column(nullable=False)
    result: Mapped[str] = mapped_column(String(12), nullable=False)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    reviewed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)

    user = relationship("User", foreign_keys=[user_id], lazy="raise")
    reviewer = relationship("User", foreign_keys=[reviewer_id], lazy="raise")

    @property
    def result_label(self) -> str:
        return RESULTS[self.result]

    @property
    def grade_label(self) -> str:
        return GRADES[self.grade][0]
