"""Printing 好邻 posters (staff who reach the campaign): one approved 标兵's poster as the A3 PDF
or as the PNG for a WeChat article, in either design; and the campaign's batch print, every
approved poster in one PDF, rendered in the background while the page shows a progress bar
(htmx polls it; without JavaScript the page refreshes itself).

What a poster prints is gathered here in a fixed number of queries for any number of posters
(nominations with names, the region names of their paths, the town), and the photos are read
from disk; posters.py renders and caches.
"""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select

from portal import batch
from portal.blueprints.auth.models import User
from portal.blueprints.commendations import bp, posters
from portal.blueprints.commendations.models import POSTER_DESIGNS, Campaign, Nomination
from portal.blueprints.commendations.posters import PosterData
from portal.blueprints.commendations.views import _campaign_or_404, _nomination_or_404
from portal.blueprints.regions.models import Region
from portal.blueprints.regions.services import node_name, path_names
from portal.extensions import db
from portal.htmx import render_page_or_partial
from portal.pdf import pdf_response
from portal.photos import read_photo
from portal.scope import current_scope


def poster_data(campaign: Campaign, nominations: list[Nomination]) -> list[PosterData]:
    """What each nomination's poster prints (three queries, whatever the number)."""
    names = dict(db.session.execute(select(User.id, User.name).where(
        User.id.in_([n.user_id for n in nominations]))).all())
    regions = path_names([campaign.path] + [n.path for n in nominations])
    top = db.session.get(Region, campaign.region_id)
    town = regions.get(campaign.town_id, "")
    issuer = posters.issuer_of(top.level, top.name)
    return [PosterData(
        name=names[n.user_id], honour=campaign.honour, series=posters.series_of(town),
        where=" · ".join(p for p in (town, node_name(n.path, regions, 1),
                                     node_name(n.path, regions, 3)) if p),
        deeds=n.deeds, stats=n.stats or {}, campaign=campaign.title, issuer=issuer,
        link=url_for("commendations.honour_entry", nomination_id=n.id, _external=True),
        photo=read_photo("commendation", n.photo)) for n in nominations]


def _approved(campaign: Campaign) -> list[Nomination]:
    """The campaign's 标兵 the user prints: all of them, or a village cadre's own village's
    (as the campaign page lists them)."""
    scope = current_scope()
    q = select(Nomination).where(Nomination.campaign_id == campaign.id,
                                 Nomination.status == "approved")
    if not scope.allows("manage", campaign.path):
        q = q.where(scope.region_clause(Nomination.path, "manage"))
    return list(db.session.scalars(q.order_by(Nomination.path, Nomination.id)))


def _design(campaign: Campaign) -> str:
    design = request.args.get("design") or campaign.design
    if design not in POSTER_DESIGNS:
        abort(404)
    return design


def _one(nomination_id: int) -> tuple[Campaign, Nomination, PosterData]:
    campaign, nomination = _nomination_or_404(nomination_id)
    scope = current_scope()
    if nomination.status != "approved" or not (scope.allows("manage", campaign.path)
                                               or scope.allows("manage", nomination.path)):
        abort(404)  # posters are for 标兵 the town has approved, printed by their cadres
    return campaign, nomination, poster_data(campaign, [nomination])[0]


@bp.get("/haolin/nominations/<int:nomination_id>/poster.pdf")
def poster_pdf(nomination_id: int):
    campaign, _, data = _one(nomination_id)
    design = _design(campaign)
    pdf, _ = posters.poster_pdf(data, design)
    return pdf_response(pdf, f"{data.name}-{data.honour}-A3.pdf",
                        download=bool(request.args.get("download")))


@bp.get("/haolin/nominations/<int:nomination_id>/poster.png")
def poster_png(nomination_id: int):
    campaign, _, data = _one(nomination_id)
    png = posters.poster_png(data, _design(campaign))
    return pdf_response(png, f"{data.name}-{data.honour}.png",
                        download=bool(request.args.get("download")), mimetype="image/png")


def _batch(campaign: Campaign) -> tuple[list[batch.Part], dict]:
    """The posters the user prints as parts of one batch, and the page's progress figures."""
    approved = _approved(campaign)
    parts = [posters.part(d, campaign.design) for d in poster_data(campaign, approved)]
    key = f"posters:{campaign.id}:" + ",".join(str(n.id) for n in approved)
    return parts, {
        "key": key, "total": len(parts), "done": batch.done(parts),
        "running": batch.running(key), "noun": "海报", "unit": "张",
        "empty": "还没有评定的标兵。镇里审定后，这里可以一次印出全部海报。",
        "pdf_label": f"下载合订本 PDF（{len(parts)} 张 A3）",
        "poll_url": url_for("commendations.batch", campaign_id=campaign.id),
        "start_url": url_for("commendations.batch_start", campaign_id=campaign.id),
        "pdf_url": url_for("commendations.batch_pdf", campaign_id=campaign.id)}


@bp.get("/haolin/<int:campaign_id>/posters", endpoint="batch")
def batch_page(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    _, state = _batch(campaign)
    return render_page_or_partial("commendations/batch.html", "_batch.html", "batch",
                                  campaign=campaign, **state)


@bp.post("/haolin/<int:campaign_id>/posters")
def batch_start(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    parts, state = _batch(campaign)
    if not parts:
        flash("还没有评定的标兵，没有海报可印。")
    batch.start(state["key"], parts)
    return redirect(url_for("commendations.batch", campaign_id=campaign.id), 303)


@bp.get("/haolin/<int:campaign_id>/posters.pdf")
def batch_pdf(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    parts, state = _batch(campaign)
    if not parts or state["done"] < state["total"]:
        flash("海报还没有全部生成，请先生成。")
        return redirect(url_for("commendations.batch", campaign_id=campaign.id), 303)
    return pdf_response(batch.merged(parts), f"{campaign.title}-海报合订本.pdf", download=True)
