"""Views of notices and call-outs."""

from portal.blueprints.notices import bp  # noqa: F401
