"""Field filters every domain's forms share."""


def strip(value):
    return value.strip() if isinstance(value, str) else value


def unix_newlines(value):
    """Browsers send a textarea's line breaks as CR LF but count them as one character
    against ``maxlength``; count them the same way here."""
    return value.replace("\r\n", "\n") if isinstance(value, str) else value
