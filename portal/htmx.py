"""Render a whole page or only the partial an htmx request targets."""

from flask import render_template, request


def hx_target() -> str | None:
    """The id of the element htmx will swap, or None for a plain (or boosted) request."""
    return request.headers.get("HX-Target")


def render_page_or_partial(page: str, partial: str, target: str, status: int = 200, **context):
    """``partial`` when htmx targets ``target``; otherwise the full ``page`` (which includes it)."""
    template = partial if hx_target() == target else page
    return render_template(template, **context), status
