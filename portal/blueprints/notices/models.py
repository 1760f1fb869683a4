"""Tables of notices and call-outs."""

from __future__ import annotations

from portal.extensions import db  # noqa: F401
