"""Accounts: creating users, checking and changing passwords."""

from flask import current_app
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from portal.audit import record
from portal.blueprints.auth.models import User
from portal.clock import utcnow
from portal.errors import ServiceError
from portal.extensions import db
from portal.phones import check_phone, mask_phone

MIN_PASSWORD = 8


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ServiceError(f"密码至少 {MIN_PASSWORD} 位。", "password")
    if password.isdigit():
        raise ServiceError("密码不能全是数字（不要用手机号或生日）。", "password")


def user_by_phone(phone: str) -> User | None:
    return db.session.scalar(select(User).where(User.phone == phone))


def create_user(actor, phone: str, name: str, password: str, region_path: str = "/") -> User:
    phone = check_phone(phone)
    name = name.strip()
    if not name:
        raise ServiceError("请填写姓名。", "name")
    if user_by_phone(phone) is not None:
        raise ServiceError("这个手机号已有账号。", "phone")
    check_new_password(password)
    user = User(phone=phone, name=name, password_hash=hash_password(password))
    user.posts = []
    db.session.add(user)
    record(actor, "user.create", user, region_path, name=name, phone=mask_phone(phone))
    return user


def authenticate(phone: str, password: str) -> User | None:
    user = user_by_phone((phone or "").strip())
    if user is None:
        # same work either way, so timing does not tell which numbers have accounts
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    if not check_password_hash(user.password_hash, password or "") or not user.active:
        return None
    user.last_login_at = utcnow()
    return user


def change_password(user: User, current: str, new: str) -> None:
    if not check_password_hash(user.password_hash, current or ""):
        raise ServiceError("当前密码不对。", "current")
    check_new_password(new)
    if new == current:
        raise ServiceError("新密码不能与当前密码相同。", "password")
    user.password_hash = hash_password(new)
    user.session_generation += 1  # other sessions of this user end
    record(user, "user.password", user, "/")


_DUMMY_HASH = generate_password_hash("not-a-real-password", method="scrypt:1024:8:1")


def reset_password(actor, user: User, new: str, region_path: str) -> None:
    """Staff set a new password for someone who forgot theirs; their sessions end."""
    check_new_password(new)
    user.password_hash = hash_password(new)
    user.session_generation += 1
    record(actor, "user.reset_password", user, region_path, name=user.name,
           phone=mask_phone(user.phone))
