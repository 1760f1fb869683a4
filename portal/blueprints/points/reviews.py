"""(being written)"""
from portal.blueprints.points import bp  # noqa: F401
