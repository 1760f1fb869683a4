"""Tables of the ledgers domain."""

from __future__ import annotations

from portal.extensions import db  # noqa: F401


# == import ==================================================================================
# (roster import)


# == social resources ========================================================================
# (辖区社会资源)


# == dashboard ===============================================================================
# (figures of a scope)
