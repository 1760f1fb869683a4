"""议事: venues, agenda items (议题), meetings, attendance, votes and the follow-up answer.

An item is raised against a region (a 邻, a group, a village …) and can be scheduled into a meeting
held at that region or above it. The households entitled to a meeting are those under its region
(the hierarchy), counted when the meeting opens. A household votes once per item — a unique
constraint on ``(item_id, household_id)``, so a second vote is impossible even when two requests
arrive at once. For a show of hands the chair enters counts instead.

Results are computed by :func:`services.outcome` when the vote closes and stored on the item
(``result_*``): after that they change only through a correction with a reason
(:class:`ResultCorrection`, plus an audit row).
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
from portal.models import IdMixin, TimestampMixin
from portal.pathcol import PathString

VENUE_KINDS = {"pavilion": "议事亭", "corner": "议事角", "hall": "议事大厅",
               "station": "红色驿站", "room": "村务议事室", "other": "其他场所"}
MEETING_KINDS = {"wuchang": "屋场会", "kentan": "民情恳谈会", "zhili": "小区治理谈",
                 "fenxi": "民情分析会", "assembly": "村民会议", "representatives": "村民代表会议"}
MEETING_STATUSES = {"planned": "已安排", "open": "进行中", "ended": "已结束"}
ITEM_STATUSES = {
    "proposed": "提议", "scheduled": "已排期", "voting": "表决中", "passed": "通过",
    "rejected": "未通过", "no_quorum": "流会", "implementing": "落实中", "answered": "已答复",
    "declined": "不予上会",
}
#: Pass rules. ``present`` is the number of households checked in when the vote closes.
RULES = {
    "cast_majority": "赞成票过投票数（赞成+反对）半数",
    "present_majority": "赞成票过到会户数半数",
    "present_two_thirds": "赞成票达到会户数三分之二",
    "assembly": "村民会议：本村三分之二以上的户的代表到会，经到会人员过半数通过",
}
RULE_SHORT = {"cast_majority": "投票过半", "present_majority": "到会过半",
              "present_two_thirds": "到会三分之二", "assembly": "村民会议规则"}
VOTE_MODES = {"household": "按户表决（每户一票）", "hands": "举手表决（录入票数）"}
CHOICES = {"yes": "赞成", "no": "反对", "abstain": "弃权"}
#: An item's statuses once its vote has a result.
DECIDED = ("passed", "rejected", "no_quorum", "implementing", "answered")


class Venue(IdMixin, TimestampMixin, db.Model):
    """议事亭, 议事角, 议事大厅, 红色驿站 …: where meetings happen."""

    __tablename__ = "venues"
    __table_args__ = (
        CheckConstraint("capacity BETWEEN 1 AND 10000", name="capacity"),
        Index("ix_venues_path", "path"),
    )

    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    #: The region's path: venues are scoped like everything else.
    path: Mapped[str] = mapped_column(PathString, nullable=False)
    name: Mapped[str] = mapped_column(String(60), nullable=False)
    kind: Mapped[str] = mapped_column(String(12), nullable=False)
    capacity: Mapped[int] = mapped_column(nullable=False, default=30)
    address: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    active: Mapped[bool] = mapped_column(nullable=False, default=True)

    region = relationship("Region", lazy="raise")

    @property
    def kind_label(self) -> str:
        return VENUE_KINDS.get(self.kind, self.kind)


class Meeting(IdMixin, TimestampMixin, db.Model):
    __tablename__ = "meetings"
    __table_args__ = (
        CheckConstraint("status IN ('planned','open','ended')", name="status"),
        CheckConstraint("planned_minutes BETWEEN 10 AND 600", name="planned_minutes"),
        Index("ix_meetings_path_starts", "path", "starts_at"),
    )

    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    #: The region's path. The households under it are entitled to take part.
    path: Mapped[str] = mapped_column(PathString, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    title: Mapped[str] = mapped_column(String(80), nullable=False)
    venue_id: Mapped[int | None] = mapped_column(ForeignKey("venues.id"))
    starts_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    planned_minutes: Mapped[int] = mapped_column(nullable=False, default=60)
    convener_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="planned")
    opened_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: Households entitled when the meeting opened (the 村民会议 quorum is counted against it).
    entitled_count: Mapped[int | None]
    #: Minutes: what was said, by whom; the decisions come from the items.
    notes: Mapped[str] = mapped_column(Text, nullable=False, default="")
    recorder: Mapped[str] = mapped_column(String(40), nullable=False, default="")

    region = relationship("Region", lazy="raise")
    venue = relationship("Venue", lazy="raise")
    convener = relationship("User", lazy="raise")

    @property
    def kind_label(self) -> str:
        return MEETING_KINDS.get(self.kind, self.kind)

    @property
    def status_label(self) -> str:
        return MEETING_STATUSES[self.status]


class AgendaItem(IdMixin, TimestampMixin, db.Model):
    """议题: raised, scheduled into a meeting, voted, then answered ("有议必有答")."""

    __tablename__ = "agenda_items"
    __table_args__ = (
        CheckConstraint(
            "status IN ('proposed','scheduled','voting','passed','rejected','no_quorum',"
            "'implementing','answered','declined')", name="status"),
        CheckConstraint("rule IN ('cast_majority','present_majority','present_two_thirds',"
                        "'assembly')", name="rule"),
        CheckConstraint("vote_mode IN ('household','hands')", name="vote_mode"),
        CheckConstraint("planned_minutes BETWEEN 1 AND 600", name="planned_minutes"),
        CheckConstraint("category_id IS NOT NULL OR off_list", name="category_or_flagged"),
        CheckConstraint("status NOT IN ('scheduled','voting') OR meeting_id IS NOT NULL",
                        name="scheduled_has_meeting"),
        CheckConstraint("hands_yes >= 0 AND hands_no >= 0 AND hands_abstain >= 0", name="hands"),
        Index("ix_agenda_items_path_status", "path", "status"),
        Index("ix_agenda_items_meeting", "meeting_id", "position"),
    )

    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    path: Mapped[str] = mapped_column(PathString, nullable=False)
    title: Mapped[str] = mapped_column(String(80), nullable=False)
    #: A 六议 item of the town's 议事清单; NULL while a matter outside the list awaits staff.
    category_id: Mapped[int | None] = mapped_column(ForeignKey("checklist_items.id"))
    #: Raised as a matter outside the 议事清单: staff decide whether it goes to a meeting.
    off_list: Mapped[bool] = mapped_column(nullable=False, default=False)
    background: Mapped[str] = mapped_column(Text, nullable=False, default="")
    proposal: Mapped[str] = mapped_column(Text, nullable=False, default="")
    raised_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="proposed")
    #: Why staff declined it, or why it was taken off a meeting.
    status_note: Mapped[str] = mapped_column(String(200), nullable=False, default="")

    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id"))
    #: Order on the meeting's agenda (1, 2, …).
    position: Mapped[int] = mapped_column(nullable=False, default=0)
    planned_minutes: Mapped[int] = mapped_column(nullable=False, default=15)
    rule: Mapped[str] = mapped_column(String(20), nullable=False, default="present_majority")
    vote_mode: Mapped[str] = mapped_column(String(10), nullable=False, default="household")
    #: Show of hands: counts the chair entered while the vote was open.
    hands_yes: Mapped[int] = mapped_column(nullable=False, default=0)
    hands_no: Mapped[int] = mapped_column(nullable=False, default=0)
    hands_abstain: Mapped[int] = mapped_column(nullable=False, default=0)
    hands_entered: Mapped[bool] = mapped_column(nullable=False, default=False)
    vote_opened_at: Mapped[datetime | None] = mapped_column(DateTime)
    vote_closed_at: Mapped[datetime | None] = mapped_column(DateTime)

    #: The locked result, written when the vote closed (and by a correction).
    result_yes: Mapped[int | None]
    result_no: Mapped[int | None]
    result_abstain: Mapped[int | None]
    #: Households checked in when the vote closed, and entitled to the meeting.
    result_present: Mapped[int | None]
    result_entitled: Mapped[int | None]
    #: The decision as written in the minutes ("同意修缮山塘输水洞，费用由…").
    decision: Mapped[str] = mapped_column(Text, nullable=False, default="")

    #: "有议必有答": who answers a passed item, by when, and the answer.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    answer_due: Mapped[date | None] = mapped_column(Date)
    answer: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: Optimistic lock: a close and a correction, or two closes, cannot both be saved.
    version: Mapped[int] = mapped_column(nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version}

    region = relationship("Region", lazy="raise")
    category = relationship("ChecklistItem", lazy="raise")
    raised_by = relationship("User", foreign_keys=[raised_by_id], lazy="raise")
    owner = relationship("User", foreign_keys=[owner_id], lazy="raise")
    meeting = relationship("Meeting", lazy="raise")

    @property
    def status_label(self) -> str:
        return ITEM_STATUSES[self.status]

    @property
    def rule_label(self) -> str:
        return RULES[self.rule]

    @property
    def decided(self) -> bool:
        return self.status in DECIDED

    def answer_overdue(self, today: date) -> bool:
        return (self.status == "implementing" and self.answer_due is not None
                and today > self.answer_due)


class Attendance(IdMixin, db.Model):
    """A household checked in at a meeting (签到), with its one-time voting code."""

    __tablename__ = "attendances"
    __table_args__ = (
        UniqueConstraint("meeting_id", "household_id", name="uq_attendances_meeting_household"),
    )

    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"),
                                            nullable=False)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), nullable=False)
    #: Who came for the household (户代表), when it is not the head.
    representative: Mapped[str] = mapped_column(String(40), nullable=False, default="")
    checked_in_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    checked_in_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    #: Shown to the household at the meeting; lets them vote on their own phone while the
    #: meeting is open. Cleared when the meeting ends.
    code: Mapped[str | None] = mapped_column(String(12), unique=True)

    household = relationship("Household", lazy="raise")
    meeting = relationship("Meeting", lazy="raise")


class Vote(IdMixin, db.Model):
    __tablename__ = "votes"
    __table_args__ = (
        #: The rule that one household votes once per item, held by the database.
        UniqueConstraint("item_id", "household_id", name="uq_votes_item_household"),
        CheckConstraint("choice IN ('yes','no','abstain')", name="choice"),
    )

    item_id: Mapped[int] = mapped_column(ForeignKey("agenda_items.id", ondelete="CASCADE"),
                                         nullable=False)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), nullable=False)
    choice: Mapped[str] = mapped_column(String(8), nullable=False)
    cast_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    #: The chair who tapped it in; NULL when the household voted with its code.
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    household = relationship("Household", lazy="raise")

    @property
    def choice_label(self) -> str:
        return CHOICES[self.choice]


class ResultCorrection(IdMixin, db.Model):
    """A change to a locked result, with its reason (also in the audit table)."""

    __tablename__ = "result_corrections"

    item_id: Mapped[int] = mapped_column(ForeignKey("agenda_items.id", ondelete="CASCADE"),
                                         nullable=False, index=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    reason: Mapped[str] = mapped_column(String(300), nullable=False)
    #: "赞成 12 反对 3 弃权 1 · 通过" before and after.
    before: Mapped[str] = mapped_column(String(120), nullable=False)
    after: Mapped[str] = mapped_column(String(120), nullable=False)

    user = relationship("User", lazy="raise")
