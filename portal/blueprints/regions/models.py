from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.clock import utcnow
from portal.extensions import db
from portal.models import IdMixin, TimestampMixin
from portal.pathcol import PathString

LEVELS = ("town", "village", "area", "group", "neighborhood")
LEVEL_LABELS = {
    "town": "镇/街道",
    "village": "村/社区",
    "area": "片",
    "group": "组",
    "neighborhood": "邻",
}
CHILD_LEVEL = dict(zip(LEVELS, LEVELS[1:], strict=False))

ROLES = (
    "neighbor_chief",
    "group_chief",
    "area_chief",
    "village_staff",
    "town_staff",
    "volunteer",
    "admin",
)
ROLE_LABELS = {
    "neighbor_chief": "邻长",
    "group_chief": "组长",
    "area_chief": "片长",
    "village_staff": "村(社区)干部",
    "town_staff": "镇(街道)干部",
    "volunteer": "志愿者/党员",
    "admin": "管理员",
}
#: The level a post of this role sits on (volunteers and admins may sit on any level).
ROLE_LEVEL = {
    "neighbor_chief": "neighborhood",
    "group_chief": "group",
    "area_chief": "area",
    "village_staff": "village",
    "town_staff": "town",
}



class Region(IdMixin, TimestampMixin, db.Model):
    __tablename__ = "regions"
    __table_args__ = (
        CheckConstraint(
            "level IN ('town','village','area','group','neighborhood')", name="level"
        ),
        UniqueConstraint("parent_id", "name", name="uq_regions_parent_name"),
        Index("ix_regions_path", "path"),
    )

    parent_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    level: Mapped[str] = mapped_column(String(12), nullable=False)
    name: Mapped[str] = mapped_column(String(60), nullable=False)
    #: Materialised path of ids, e.g. "/1/7/31/204/"; a subtree is one prefix range.
    path: Mapped[str] = mapped_column(PathString, nullable=False, default="")

    parent = relationship("Region", remote_side="Region.id", lazy="raise")

    @property
    def level_label(self) -> str:
        return LEVEL_LABELS[self.level]

    @property
    def ancestor_ids(self) -> list[int]:
        return [int(p) for p in self.path.strip("/").split("/") if p]

    @property
    def town_id(self) -> int:
        return self.ancestor_ids[0]

    @property
    def child_level(self) -> str | None:
        return CHILD_LEVEL.get(self.level)

    def __repr__(self) -> str:
        return f"<Region {self.path} {self.name}>"


household_tag_links = Table(
    "household_tag_links",
    db.metadata,
    Column("household_id", ForeignKey("households.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("household_tags.id", ondelete="CASCADE"), primary_key=True),
)


class HouseholdTag(IdMixin, db.Model):
    """A special-population tag (留守儿童, 孤寡老人 …); the list is editable per town."""

    __tablename__ = "household_tags"
    __table_args__ = (UniqueConstraint("town_id", "name", name="uq_household_tags_town_name"),)

    town_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(20), nullable=False)
    sort: Mapped[int] = mapped_column(default=0, nullable=False)
    active: Mapped[bool] = mapped_column(default=True, nullable=False)


class Household(IdMixin, TimestampMixin, db.Model):
    __tablename__ = "households"
    __table_args__ = (
        CheckConstraint("member_count BETWEEN 1 AND 30", name="member_count"),
        Index("ix_households_neighborhood_id", "neighborhood_id"),
    )

    #: The 邻 (level "neighborhood") whose 邻长 links this household.
    neighborhood_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False)
    address: Mapped[str] = mapped_column(String(100), nullable=False)
    head_name: Mapped[str] = mapped_column(String(40), nullable=False)
    #: Personal data (PIPL): shown masked except to the household's 邻长 and staff.
    phone: Mapped[str | None] = mapped_column(String(11))
    member_count: Mapped[int] = mapped_column(default=1, nullable=False)
    #: When the household last got a special tag; the special contact rule applies from then.
    special_since: Mapped[datetime | None] = mapped_column(DateTime)
    #: Latest 上门 visit, kept from the duty logs in the same transaction.
    last_visit_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: Latest contact of any method (visit, phone, WeChat, other).
    last_contact_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_contact_method: Mapped[str | None] = mapped_column(String(10))
    #: Secret of the household's request link and QR code (点单); unguessable, replaceable.
    intake_token: Mapped[str | None] = mapped_column(String(32), unique=True)

    neighborhood = relationship("Region", lazy="raise")
    tags = relationship("HouseholdTag", secondary=household_tag_links, lazy="raise",
                        order_by="HouseholdTag.sort")

    @property
    def is_special(self) -> bool:
        return self.special_since is not None


class Post(IdMixin, db.Model):
    __tablename__ = "posts"
    __table_args__ = (
        CheckConstraint(
            "role IN ('neighbor_chief','group_chief','area_chief','village_staff',"
            "'town_staff','volunteer','admin')",
            name="role",
        ),
        Index("ix_posts_user_id", "user_id"),
        Index("ix_posts_region_id_role", "region_id", "role"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    #: The node whose subtree this post covers; NULL only for a deployment-wide admin.
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    #: Set when the post is ended; ended posts give no access but stay for the record.
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: Secret in the URL of the work card's (工作证) verification page; made on first print.
    card_token: Mapped[str | None] = mapped_column(String(32), unique=True)
    #: The work card's photo, a file under uploads/kit/ (re-encoded JPEG without EXIF).
    card_photo: Mapped[str | None] = mapped_column(String(64))

    user = relationship("User", back_populates="posts", lazy="raise")
    region = relationship("Region", lazy="raise")

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]

    @property
    def active(self) -> bool:
        return self.ended_at is None
