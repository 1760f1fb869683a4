"""Mobile numbers: validation and the masked form shown to most users (PIPL)."""

import re

from portal.errors import ServiceError

PHONE_RE = re.compile(r"^1[3-9]\d{9}$")


def mask_phone(phone: str | None) -> str:
    """138****8000"""
    if not phone:
        return ""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


def check_phone(phone: str, field: str = "phone") -> str:
    phone = (phone or "").strip()
    if not PHONE_RE.match(phone):
        raise ServiceError("手机号应为 11 位数字，以 1 开头，如 13800138000。", field)
    return phone
