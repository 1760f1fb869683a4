"""Time: stored as naive UTC datetimes, shown and reasoned about in the display zone."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

LOCAL = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    """Now as a naive UTC datetime (how every timestamp is stored)."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_local(value: datetime) -> datetime:
    """A stored naive-UTC datetime as an aware Asia/Shanghai datetime."""
    return value.replace(tzinfo=UTC).astimezone(LOCAL)


def local_to_utc(value: datetime) -> datetime:
    """A naive Asia/Shanghai wall-clock datetime as stored naive UTC."""
    return value.replace(tzinfo=LOCAL).astimezone(UTC).replace(tzinfo=None)


def local_midnight_utc(day: date) -> datetime:
    """The UTC instant at which ``day`` begins in Asia/Shanghai."""
    return local_to_utc(datetime.combine(day, time.min))


def local_today(now_utc: datetime | None = None) -> date:
    return to_local(now_utc or utcnow()).date()


def fmt_local(value: datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
    return to_local(value).strftime(pattern) if value else ""


def fmt_short(value: datetime | None, now_utc: datetime | None = None) -> str:
    """Compact date for phone rows: 今天 14:05 / 昨天 / 10月3日 / 2025年12月3日."""
    if not value:
        return ""
    local = to_local(value)
    today = local_today(now_utc)
    if local.date() == today:
        return f"今天 {local:%H:%M}"
    if local.date() == today - timedelta(days=1):
        return "昨天"
    if local.year == today.year:
        return f"{local.month}月{local.day}日"
    return f"{local.year}年{local.month}月{local.day}日"
