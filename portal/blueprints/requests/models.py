"""民情诉求: a resident's request (点单), its timeline, and mediations of disputes.

Levels are small integers so that "escalate" is ``level + 1``: 0 = 邻, 1 = 组, 2 = 村, 3 = 镇
(片 is not a response level: "片组汇总" — the 片长 helps the 组长 answer at 组).

**Deadlines.** A request waiting for a response (status ``new``) carries four instants ``due_0``
… ``due_3``: when the response deadline at each level passes. They are chained when the request
enters a level L at time t — ``due_L = t + hours[L]``, ``due_L+1 = due_L + hours[L+1]`` … — and the
levels below L get ``t`` (already passed). The level it *effectively* sits at is then the first k
with ``now < due_k`` (3 if none): a pure function of the row and the clock, the same in Python
(:func:`services.effective`) and in SQL (:func:`services.effective_level_sql`), so every read is
right even if no background job has recorded the escalation yet. ``flask requests tick`` and any
later change to the request record the escalations that happened (:func:`services.sync`).
"""

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.clock import to_local, utcnow
from portal.extensions import db
from portal.models import IdMixin, TimestampMixin
from portal.pathcol import PathString

#: Response levels, bottom up: index = Request.level.
LEVEL_KEYS = ("neighborhood", "group", "village", "town")
LEVEL_NAMES = ("邻", "组", "村", "镇")
#: "微事不出邻、小事不出组、大事不出村、难事不出镇"
LEVEL_MOTTOS = ("微事不出邻", "小事不出组", "大事不出村", "难事不出镇")
TOP = 3
STATUSES = {"new": "待响应", "working": "办理中", "closed": "已办结"}
RATINGS = {"satisfied": "满意", "basic": "基本满意", "unsatisfied": "不满意"}
SOURCES = {"resident": "居民点单", "chief": "邻长代录"}
OUTCOMES = {"agreed": "达成协议", "not_agreed": "未达成协议"}
EVENT_LABELS = {
    "created": "提交诉求",
    "acknowledged": "已响应",
    "escalated": "上报",
    "timeout": "超时自动上报",
    "routed": "转交部门",
    "helpers": "发布接单",
    "claimed": "接单",
    "released": "退回接单",
    "progress": "办理进展",
    "helper_done": "接单人办完",
    "closed": "办结答复",
    "rated": "居民评价",
    "reopened": "居民重新打开",
    "mediation": "调解记录",
}

DEFAULT_CATEGORIES = (  # (name, is a dispute → offers the mediation record)
    ("安全隐患", False), ("邻里纠纷", True), ("物业管理", False), ("环境卫生", False),
    ("政策咨询", False), ("生活求助", False), ("其他", False),
)
DEFAULT_DEPARTMENTS = ("农业综合服务中心", "综治中心", "民政办", "城管办", "就业服务站")
#: Response hours per level: 4 at 邻 from 江背镇 ("原则上在4个小时内进行处理答复"); the others
#: are this project's defaults, editable per town.
DEFAULT_HOURS = (4, 24, 48, 72)
DEFAULT_REOPEN_DAYS = 7


class RequestSettings(db.Model):
    """Per-town deadlines and the reopen window."""

    __tablename__ = "request_settings"
    __table_args__ = (
        CheckConstraint("hours_neighborhood BETWEEN 1 AND 720 AND hours_group BETWEEN 1 AND 720 "
                        "AND hours_village BETWEEN 1 AND 720 AND hours_town BETWEEN 1 AND 720",
                        name="hours"),
        CheckConstraint("reopen_days BETWEEN 0 AND 90", name="reopen_days"),
    )

    town_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), primary_key=True)
    hours_neighborhood: Mapped[int] = mapped_column(default=DEFAULT_HOURS[0], nullable=False)
    hours_group: Mapped[int] = mapped_column(default=DEFAULT_HOURS[1], nullable=False)
    hours_village: Mapped[int] = mapped_column(default=DEFAULT_HOURS[2], nullable=False)
    hours_town: Mapped[int] = mapped_column(default=DEFAULT_HOURS[3], nullable=False)
    #: A resident may reopen a closed request for this many days after it was closed.
    reopen_days: Mapped[int] = mapped_column(default=DEFAULT_REOPEN_DAYS, nullable=False)

    @property
    def hours(self) -> tuple[int, int, int, int]:
        return (self.hours_neighborhood, self.hours_group, self.hours_village, self.hours_town)


class RequestCategory(IdMixin, db.Model):
    __tablename__ = "request_categories"
    __table_args__ = (UniqueConstraint("town_id", "name", name="uq_request_categories_town_name"),)

    town_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(20), nullable=False)
    #: Disputes (矛盾纠纷) offer the mediation record.
    is_dispute: Mapped[bool] = mapped_column(default=False, nullable=False)
    sort: Mapped[int] = mapped_column(default=0, nullable=False)
    active: Mapped[bool] = mapped_column(default=True, nullable=False)


class Department(IdMixin, db.Model):
    """A town department a request can be routed to at 村 or 镇 (农业综合服务中心, 综治 …)."""

    __tablename__ = "departments"
    __table_args__ = (UniqueConstraint("town_id", "name", name="uq_departments_town_name"),)

    town_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(40), nullable=False)
    sort: Mapped[int] = mapped_column(default=0, nullable=False)
    active: Mapped[bool] = mapped_column(default=True, nullable=False)


class Request(IdMixin, TimestampMixin, db.Model):
    """民情诉求: one resident's request, from 点单 to the answer and the resident's rating."""

    __tablename__ = "requests"
    __table_args__ = (
        CheckConstraint("status IN ('new','working','closed')", name="status"),
        CheckConstraint("level BETWEEN 0 AND 3", name="level"),
        CheckConstraint("source IN ('resident','chief')", name="source"),
        CheckConstraint("rating IS NULL OR rating IN ('satisfied','basic','unsatisfied')",
                        name="rating"),
        CheckConstraint("status <> 'closed' OR (answer IS NOT NULL AND closed_at IS NOT NULL)",
                        name="closed_has_answer"),
        # scoped lists by period (stats, 台账) and the open ones (queues, overdue lists)
        Index("ix_requests_path_created", "path", "created_at",  # covering: the figures
              postgresql_include=["status", "level", "closed_level", "category_id", "rating",
                                  "missed", "due_0"]),
        Index("ix_requests_open_path", "path", "status",
              postgresql_where=text("status <> 'closed'"), sqlite_where=text("status <> 'closed'")),
        Index("ix_requests_household_created", "household_id", "created_at"),
        Index("ix_requests_helper_id", "helper_id"),
    )

    town_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), nullable=False)
    #: The household's 邻 when the request was made, and its path: the request's node at each
    #: level is an ancestor on this path, and scoping is a prefix range on it.
    neighborhood_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    path: Mapped[str] = mapped_column(PathString, nullable=False)
    category_id: Mapped[int] = mapped_column(ForeignKey("request_categories.id"), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False)
    #: File name under <uploads>/requests/, a re-encoded JPEG without EXIF.
    photo: Mapped[str | None] = mapped_column(String(64))
    contact_name: Mapped[str] = mapped_column(String(40), nullable=False, default="")
    #: Personal data (PIPL): shown masked except to the household's 邻长 and staff.
    contact_phone: Mapped[str | None] = mapped_column(String(11))
    #: How or when to reach them ("晚上在家", "微信同号").
    contact_note: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    source: Mapped[str] = mapped_column(String(10), nullable=False)
    #: The 三长 who recorded it for the resident (source "chief").
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: One-time token of the form: a resubmitted form cannot create a second request.
    form_token: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)

    status: Mapped[str] = mapped_column(String(10), nullable=False, default="new")
    #: Level as last recorded; while status is "new" the effective level may be higher.
    level: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=0)
    due_0: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    due_1: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    due_2: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    due_3: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    #: Bit k set: the response deadline at level k passed without a response (as recorded).
    missed: Mapped[int] = mapped_column(nullable=False, default=0)
    #: Who responded at the current level and is answering it.
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))

    #: 接单: the handler offered it to volunteers, party members and 三长.
    open_to_helpers: Mapped[bool] = mapped_column(nullable=False, default=False)
    helper_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    helper_done_at: Mapped[datetime | None] = mapped_column(DateTime)

    answer: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_level: Mapped[int | None] = mapped_column(SmallInteger)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    rating: Mapped[str | None] = mapped_column(String(12))
    rating_note: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    rated_at: Mapped[datetime | None] = mapped_column(DateTime)
    reopen_count: Mapped[int] = mapped_column(nullable=False, default=0)
    #: Optimistic lock: two changes made from the same state cannot both be saved (the claim
    #: race, two handlers answering at once).
    version: Mapped[int] = mapped_column(nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version}

    household = relationship("Household", lazy="raise")
    category = relationship("RequestCategory", lazy="raise")
    department = relationship("Department", lazy="raise")
    handler = relationship("User", foreign_keys=[handler_id], lazy="raise")
    helper = relationship("User", foreign_keys=[helper_id], lazy="raise")
    created_by = relationship("User", foreign_keys=[created_by_id], lazy="raise")

    @property
    def dues(self) -> tuple[datetime, datetime, datetime, datetime]:
        return (self.due_0, self.due_1, self.due_2, self.due_3)

    @property
    def status_label(self) -> str:
        return STATUSES[self.status]

    @property
    def number(self) -> str:
        """The reference a resident quotes: year + id, e.g. 2026-000123."""
        return f"{to_local(self.created_at):%Y}-{self.id:06d}"


class RequestEvent(IdMixin, db.Model):
    """One step of a request's timeline. Append-only: rows are never updated or deleted."""

    __tablename__ = "request_events"
    __table_args__ = (Index("ix_request_events_request_at", "request_id", "at"),)

    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    #: NULL: the resident (through the household link) or the system (a deadline passed).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    from_status: Mapped[str | None] = mapped_column(String(10))
    to_status: Mapped[str | None] = mapped_column(String(10))
    from_level: Mapped[int | None] = mapped_column(SmallInteger)
    to_level: Mapped[int | None] = mapped_column(SmallInteger)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")

    user = relationship("User", lazy="raise")

    @property
    def label(self) -> str:
        return EVENT_LABELS.get(self.kind, self.kind)


class Mediation(IdMixin, db.Model):
    """矛盾纠纷调解: one mediation session of a dispute, with the agreement if one was signed
    (the seeds' 赡养协议: six children sign to support their mother)."""

    __tablename__ = "mediations"
    __table_args__ = (
        CheckConstraint("outcome IN ('agreed','not_agreed')", name="outcome"),
        CheckConstraint("outcome <> 'agreed' OR (agreement_title <> '' AND signed_on IS NOT NULL)",
                        name="agreement_signed"),
        Index("ix_mediations_request_id", "request_id"),
    )

    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), nullable=False)
    held_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    #: The parties, as the mediators write them (names or "周奶奶及六名子女").
    parties: Mapped[str] = mapped_column(String(200), nullable=False)
    mediators: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    outcome: Mapped[str] = mapped_column(String(12), nullable=False)
    agreement_title: Mapped[str] = mapped_column(String(60), nullable=False, default="")
    #: What the parties agreed, in their words.
    agreement_terms: Mapped[str] = mapped_column(Text, nullable=False, default="")
    signed_on: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)

    recorded_by = relationship("User", lazy="raise")

    @property
    def outcome_label(self) -> str:
        return OUTCOMES[self.outcome]
