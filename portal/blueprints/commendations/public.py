"""Public pages of 好邻 (no account): the 公示 of a campaign, where anyone may object to a
nominee during the notice period, and the honour wall with one page per 标兵 (the posters' QR
codes point there). They show a nominee's name, where they serve, the title, deeds and figures —
nothing of the residents they serve."""

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField, TextAreaField

from portal.blueprints.commendations import bp
from portal.blueprints.commendations import services as svc
from portal.blueprints.commendations.models import STAT_LABELS, Campaign, Nomination
from portal.blueprints.regions.models import Region
from portal.blueprints.regions.services import where_of
from portal.errors import attempt
from portal.extensions import db, limiter
from portal.forms import strip, unix_newlines
from portal.photos import send_photo
from portal.scope import path_range

PUBLIC = frozenset({"commendations.public_notice", "commendations.public_object",
                    "commendations.honour_wall", "commendations.honour_entry"})


def _post_limit() -> str:
    return current_app.config["PUBLIC_REQUEST_RATE_LIMIT"]


objection_limit = limiter.shared_limit(_post_limit, scope="objection", methods=["POST"])


class ObjectionForm(FlaskForm):
    reason = TextAreaField("异议理由", filters=[strip, unix_newlines],
                           render_kw={"maxlength": 1000, "rows": 3,
                                      "placeholder": "写明事实，便于核实（至少 10 个字）"})
    contact = StringField("联系方式（可不填，只给核实的干部看）",
                          filters=[strip], render_kw={"maxlength": 60})


def _published(campaign_id: int) -> Campaign:
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None or campaign.status == "nominating":
        abort(404)  # not published yet
    return campaign


def _notice_page(campaign: Campaign, forms=None, failed: int | None = None, status=200):
    rows = list(db.session.scalars(
        select(Nomination)
        .where(Nomination.campaign_id == campaign.id, Nomination.status != "withdrawn")
        .order_by(Nomination.path, Nomination.id)))
    from portal.blueprints.auth.models import User

    names = dict(db.session.execute(select(User.id, User.name).where(
        User.id.in_([n.user_id for n in rows]))).all())
    where = where_of(n.path for n in rows)
    forms = forms or {}
    return render_template(
        "commendations/public_notice.html", campaign=campaign, rows=rows, names=names,
        where=where, labels=STAT_LABELS, open=svc.in_notice(campaign), failed=failed,
        today=svc.today(),
        forms={n.id: forms.get(n.id) or ObjectionForm(formdata=None) for n in rows}), status


@bp.get("/gongshi/haolin/<int:campaign_id>")
def public_notice(campaign_id: int):
    return _notice_page(_published(campaign_id))


@bp.post("/gongshi/haolin/<int:campaign_id>/<int:nomination_id>/object")
@objection_limit
def public_object(campaign_id: int, nomination_id: int):
    campaign = _published(campaign_id)
    nomination = db.session.get(Nomination, nomination_id)
    if nomination is None or nomination.campaign_id != campaign.id:
        abort(404)
    form = ObjectionForm()
    if form.validate_on_submit() and attempt(form, lambda: svc.lodge_objection(
            nomination, campaign, form.reason.data, form.contact.data)):
        db.session.commit()
        flash("异议已收到。村(社区)或镇干部会核实处理，处理完之前不会审定这位人选。")
        return redirect(url_for("commendations.public_notice", campaign_id=campaign.id,
                                _anchor=f"n{nomination.id}"), 303)
    db.session.rollback()
    return _notice_page(campaign, {nomination.id: form}, nomination.id, 422)


@bp.get("/rongyu/<int:region_id>")
def honour_wall(region_id: int):
    """The 标兵 approved under a town or a village, newest campaign first."""
    region = db.session.get(Region, region_id)
    if region is None or region.level not in ("town", "village"):
        abort(404)
    from portal.blueprints.auth.models import User

    rows = db.session.execute(
        select(Nomination, Campaign.title, Campaign.honour, User.name)
        .join(Campaign, Campaign.id == Nomination.campaign_id)
        .join(User, User.id == Nomination.user_id)
        .where(path_range(Nomination.path, region.path), Nomination.status == "approved")
        .order_by(Campaign.notice_end.desc(), Campaign.id.desc(), Nomination.path)).all()
    return render_template("commendations/honour_wall.html", region=region, rows=rows,
                           where=where_of(n.path for n, *_ in rows))


@bp.get("/rongyu/entry/<int:nomination_id>")
def honour_entry(nomination_id: int):
    """One 标兵: where a poster's QR code leads."""
    from portal.blueprints.auth.models import User

    row = db.session.execute(
        select(Nomination, Campaign, User.name)
        .join(Campaign, Campaign.id == Nomination.campaign_id)
        .join(User, User.id == Nomination.user_id)
        .where(Nomination.id == nomination_id, Nomination.status == "approved")).first()
    if row is None:
        abort(404)
    nomination, campaign, name = row
    return render_template("commendations/honour_entry.html", n=nomination, campaign=campaign,
                           name=name, where=where_of([nomination.path])[nomination.path],
                           labels=STAT_LABELS, town=db.session.get(Region, campaign.town_id))


@bp.get("/rongyu/photo/<int:nomination_id>")
def photo(nomination_id: int):
    """A nominee's photo: public once the campaign is published (as their name and deeds are),
    before that only to the cadres who reach the campaign."""
    nomination = db.session.get(Nomination, nomination_id)
    if nomination is None or not nomination.photo:
        abort(404)
    campaign = db.session.get(Campaign, nomination.campaign_id)
    if campaign.status == "nominating" or nomination.status == "withdrawn":
        if not current_user.is_authenticated:
            abort(404)
        from portal.blueprints.commendations.views import _campaign_or_404

        _campaign_or_404(campaign.id)
    return send_photo("commendation", nomination.photo, max_age=3600)
