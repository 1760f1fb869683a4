"""Field filters and field makers every domain's forms share."""

from wtforms import StringField, TextAreaField
from wtforms.validators import Length


def strip(value):
    return value.strip() if isinstance(value, str) else value


def unix_newlines(value):
    """Browsers send a textarea's line breaks as CR LF but count them as one character
    against ``maxlength``; count them the same way here."""
    return value.replace("\r\n", "\n") if isinstance(value, str) else value


#: What a ``datetime-local`` input sends (with or without seconds) and what people type.
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]


def text_area(label: str, limit: int, rows: int = 3, **render_kw):
    """A textarea of at most ``limit`` characters, line breaks counted once, trimmed."""
    return TextAreaField(label, filters=[unix_newlines, strip],
                         validators=[Length(max=limit, message=f"最多 {limit} 字。")],
                         render_kw={"rows": rows, "maxlength": limit, **render_kw})


def text_line(label: str, limit: int, **render_kw):
    """A one-line text input of at most ``limit`` characters, trimmed."""
    return StringField(label, filters=[strip],
                       validators=[Length(max=limit, message=f"最多 {limit} 字。")],
                       render_kw={"maxlength": limit, **render_kw})
