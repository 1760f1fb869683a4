"""Tables of the ledgers domain."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

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
