"""The audit table: who changed what, when. Written in the same transaction as the change."""

import json
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.clock import utcnow
from portal.extensions import db
from portal.models import IdMixin
from portal.pathcol import PathString


class AuditEntry(IdMixin, db.Model):
    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_region_path_at", "region_path", "at"),)

    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: e.g. "household.create", "post.end"
    action: Mapped[str] = mapped_column(String(40), nullable=False)
    object_type: Mapped[str] = mapped_column(String(30), nullable=False)
    object_id: Mapped[int | None]
    #: Path of the region the change belongs to, so the audit view can be scoped.
    region_path: Mapped[str] = mapped_column(PathString, nullable=False, default="/")
    #: JSON of what changed; personal numbers are stored masked.
    detail: Mapped[str] = mapped_column(Text, nullable=False, default="{}")

    user = relationship("User", lazy="raise")

    @property
    def detail_dict(self) -> dict:
        return json.loads(self.detail or "{}")


def record(user, action: str, obj, region_path: str = "/", **detail) -> AuditEntry:
    """Add an audit row for ``obj`` to the session (flushes so the object has an id)."""
    db.session.flush()
    entry = AuditEntry(
        user_id=getattr(user, "id", None),
        action=action,
        object_type=type(obj).__name__.lower(),
        object_id=getattr(obj, "id", None),
        region_path=region_path,
        detail=json.dumps(detail, ensure_ascii=False, default=str, sort_keys=True),
    )
    db.session.add(entry)
    return entry
