"""Tables of notices (通知公告, with one receipt row per recipient) and call-outs (倡议, with the
neighbours' sign-ups)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    and_,
    func,
    select,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from portal.blueprints.auth.models import User
from portal.clock import utcnow
from portal.extensions import db
from portal.models import IdMixin
from portal.pathcol import PathString


class Notice(IdMixin, db.Model):
    """A notice published to a region's subtree; its recipients are fixed at publication."""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_path", "path"),)

    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    #: The region's path at publication: who may manage the notice (staff over it) is asked here.
    path: Mapped[str] = mapped_column(PathString, nullable=False)
    title: Mapped[str] = mapped_column(String(60), nullable=False)
    #: Plain text; shown escaped with its line breaks kept.
    body: Mapped[str] = mapped_column(Text, nullable=False)
    published_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    published_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    #: How many people it was sent to (the receipt rows written at publication).
    recipient_count: Mapped[int] = mapped_column(default=0, nullable=False)
    #: Set by 撤回: the notice leaves the recipients' lists and badge; the receipts stay.
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime)
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    region = relationship("Region", lazy="raise")
    publisher = relationship("User", foreign_keys=[published_by_id], lazy="raise")


class NoticeRecipient(db.Model):
    """One person a notice was sent to, and when they first opened it."""

    __tablename__ = "notice_recipients"
    __table_args__ = (
        # the badge: a person's unread receipts (read_at IS NULL) by an index range
        Index("ix_notice_recipients_user_id_read_at", "user_id", "read_at"),
    )

    notice_id: Mapped[int] = mapped_column(
        ForeignKey("notices.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    #: Path of the recipient's (first) post inside the notice's region at publication, for
    #: grouping the receipts by 村/组.
    path: Mapped[str] = mapped_column(PathString, nullable=False)
    #: First opening; never moved later.
    read_at: Mapped[datetime | None] = mapped_column(DateTime)

    user = relationship("User", lazy="raise")


#: The unread badge: loaded with the user in the login's one query (see auth.views.load_user),
#: so the nav costs no query of its own; deferred everywhere else.
User.unread_notices = column_property(
    select(func.count())
    .select_from(NoticeRecipient)
    .join(Notice, and_(Notice.id == NoticeRecipient.notice_id, Notice.withdrawn_at.is_(None)))
    .where(NoticeRecipient.user_id == User.id, NoticeRecipient.read_at.is_(None))
    .correlate_except(NoticeRecipient, Notice)
    .scalar_subquery(),
    deferred=True,
)


class CallOut(IdMixin, db.Model):
    """A 倡议: a 邻长 (for their 邻) or 组长 (for their 组) calls neighbours to do something
    together; neighbours sign up on its public link."""

    __tablename__ = "callouts"
    __table_args__ = (
        CheckConstraint("cap IS NULL OR cap BETWEEN 1 AND 500", name="cap"),
        Index("ix_callouts_path", "path"),
        Index("ix_callouts_created_by_id", "created_by_id"),
    )

    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    path: Mapped[str] = mapped_column(PathString, nullable=False)
    title: Mapped[str] = mapped_column(String(40), nullable=False)
    #: What to do (plain text).
    task: Mapped[str] = mapped_column(Text, nullable=False)
    #: When it starts (stored UTC); sign-up closes then.
    starts_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    place: Mapped[str] = mapped_column(String(60), nullable=False)
    #: Most people who may sign up (sum of each sign-up's people); NULL: no limit.
    cap: Mapped[int | None]
    #: Secret of the public sign-up link /cy/<token>.
    token: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime)
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: When it was recorded as duty logs (记为履职); once only.
    logged_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: How many households' duty logs that wrote.
    logged_households: Mapped[int | None]

    region = relationship("Region", lazy="raise")
    creator = relationship("User", foreign_keys=[created_by_id], lazy="raise")


class CallOutSignup(IdMixin, db.Model):
    """A neighbour's sign-up (no account). The same phone signing up again updates its row."""

    __tablename__ = "callout_signups"
    __table_args__ = (
        UniqueConstraint("callout_id", "phone", name="uq_callout_signups_callout_phone"),
        CheckConstraint("people BETWEEN 1 AND 10", name="people"),
    )

    callout_id: Mapped[int] = mapped_column(
        ForeignKey("callouts.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(20), nullable=False)
    #: Personal data (PIPL), optional: shown masked except to the 邻长 who posted and staff.
    phone: Mapped[str | None] = mapped_column(String(11))
    #: How many people come with this sign-up (1–10).
    people: Mapped[int] = mapped_column(default=1, nullable=False)
    note: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
