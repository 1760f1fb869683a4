"""dashboard_views of the ledgers blueprint."""

from portal.blueprints.ledgers import bp  # noqa: F401
