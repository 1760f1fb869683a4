"""One-time form tokens: a form sent twice (a double tap, a retry on a slow line) saves once.

The model has a unique ``form_token`` column and a ``household_id``.
"""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.errors import ServiceError
from portal.extensions import db

EXPIRED = "表单已失效，请重新打开。"


def earlier(model, token: str, household_id: int):
    """The row an earlier sending of this form saved, or None. The token of another
    household's form is refused."""
    row = db.session.scalar(select(model).where(model.form_token == token))
    if row is not None and row.household_id != household_id:
        raise ServiceError(EXPIRED)
    return row


def flush_once(model, token: str):
    """Flush the new row; None when it was saved. When the same form raced in on another
    request and won, roll back and return the row that won."""
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        row = db.session.scalar(select(model).where(model.form_token == token))
        if row is None:
            raise
        return row
    return None
