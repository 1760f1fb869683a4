from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models import IdMixin, TimestampMixin


class User(IdMixin, TimestampMixin, UserMixin, db.Model):
    __tablename__ = "users"

    #: Mainland mobile number, 11 digits; the login name.
    phone: Mapped[str] = mapped_column(String(11), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(40), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    active: Mapped[bool] = mapped_column(default=True, nullable=False)
    #: Bumped on password change; part of the session id, so old sessions end.
    session_generation: Mapped[int] = mapped_column(default=0, nullable=False)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)

    posts = relationship("Post", back_populates="user", lazy="raise")

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.active

    def get_id(self) -> str:
        return f"{self.id}.{self.session_generation}"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.name}>"
