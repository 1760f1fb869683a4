"""The resident's side of 民情诉求: the household link (点单 without an account, the household's
requests, rating and reopening), a 三长 recording a request for a household, and the link's QR
code for the 联户信息卡.

The public pages are reached only through the household's secret link (``/r/<token>``): they show
that household's requests and nothing else, never a phone number, and are rate-limited per client
address (guessing tokens, flooding the form)."""

import uuid
from datetime import timedelta

import segno
from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.blueprints.requests import bp
from portal.blueprints.requests import services as svc
from portal.blueprints.requests.forms import RateForm, ReopenForm, RequestForm
from portal.blueprints.requests.models import LEVEL_NAMES, RATINGS, Request, RequestCategory
from portal.clock import utcnow
from portal.errors import MESSAGES, ServiceError, _retry_minutes, attempt, show_on_form
from portal.extensions import db, limiter
from portal.photos import process_photo, send_photo
from portal.scope import current_scope, get_household_or_404

#: Endpoints reached without an account (listed in PUBLIC_ENDPOINTS of the app).
PUBLIC = frozenset({"requests.public_home", "requests.public_detail", "requests.public_rate",
                    "requests.public_reopen", "requests.public_photo"})
#: Who answers at each level, as a resident would say it.
RESPONDERS = ("邻长", "组长", "村(社区)干部", "镇干部")
INVALID_LINK = "链接无效或已更换，请向您的邻长索取新的二维码。"
NO_SUCH_REQUEST = "找不到这条诉求。请从您家的链接重新打开。"


def _link_limit() -> str:
    return current_app.config["PUBLIC_LINK_RATE_LIMIT"]


def _post_limit() -> str:
    return current_app.config["PUBLIC_REQUEST_RATE_LIMIT"]


#: Every page under /r/ shares one budget per address (guessing tokens), and so do the forms.
link_limit = limiter.shared_limit(_link_limit, scope="request-link", methods=["GET"])
post_limit = limiter.shared_limit(_post_limit, scope="request-post", methods=["POST"])


# -- helpers -------------------------------------------------------------------------------------
def household_label(household) -> str:
    """What the public pages call the household: the family name only ("张家")."""
    return f"{household.head_name[:1]}家"


def time_left(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    if hours >= 48:
        return f"{hours // 24} 天 {hours % 24} 小时"
    if hours:
        return f"{hours} 小时 {minutes} 分钟"
    return f"{minutes} 分钟"


def who(event) -> str:
    """The actor of a timeline event as the resident sees it: the level and the name, or
    居民 / 系统 — never a phone number."""
    if event.user_id is None:
        return "系统" if event.kind == "timeout" else "居民"
    name = event.user.name
    if event.kind == "created":
        return f"{name}（代录）"
    if event.kind in ("claimed", "progress", "helper_done", "released"):
        return f"接单人 {name}"
    if event.from_level is not None:
        return f"{LEVEL_NAMES[event.from_level]}级 · {name}"
    return name


def _invalid(message: str = INVALID_LINK, token: str | None = None):
    return render_template("requests/public_error.html", title="找不到页面", message=message,
                           token=token), 404


def _household(token: str):
    """The household of the link, or None (bad or replaced token)."""
    return svc.household_by_token(token)


def _category_choices(form, town_id: int) -> None:
    form.category_id.choices = {str(c.id): c.name for c in svc.options(RequestCategory, town_id)}


def _form_data(form) -> dict:
    return {"category_id": form.category_id.data, "description": form.description.data,
            "contact_name": form.contact_name.data or "",
            "contact_phone": form.contact_phone.data or "",
            "contact_note": form.contact_note.data or ""}


def _request_form(town_id: int):
    """The 点单 form: blank with a new one-time token (GET), or as posted."""
    if request.method == "GET":
        form = RequestForm(formdata=None)
        form.token.data = str(uuid.uuid4())
    else:
        form = RequestForm()
    _category_choices(form, town_id)
    return form


def _try_submit(form, household, *, source: str, actor):
    """(request, created) from a valid posted form; None when a rule refused it (the message
    is on the form and the session rolled back)."""
    try:
        photo = process_photo(form.photo.data)
        return svc.submit(household, _form_data(form), source=source, actor=actor, photo=photo,
                          token=form.token.data, now=utcnow())
    except ServiceError as e:
        db.session.rollback()
        show_on_form(form, e)
        return None


def _submitted_message(req, created: bool) -> str:
    if not created:
        return f"这条诉求已经提交过了（编号 {req.number}），没有重复提交。"
    hours = svc.town_settings(req.town_id).hours[req.level]
    return (f"已提交，编号 {req.number}。{RESPONDERS[req.level]}将在 {hours} 小时内答复，"
            "请留意电话，也可以随时打开本页查看进展。")


# -- the household link --------------------------------------------------------------------------
@bp.route("/r/<token>", methods=["GET", "POST"])
@link_limit
@post_limit
def public_home(token: str):
    household = _household(token)
    if household is None:
        return _invalid()
    form = _request_form(household.neighborhood.town_id)
    if request.method == "GET":
        return _render_home(household, token, form)
    if form.validate_on_submit():
        done = _try_submit(form, household, source="resident", actor=None)
        if done is None:
            household = _household(token)  # the rollback expired it (relationships raise)
            if household is None:
                return _invalid()
        else:
            req, created = done
            message, target = _submitted_message(req, created), url_for(
                "requests.public_detail", token=token, request_id=req.id)
            db.session.commit()
            flash(message)
            return redirect(target, 303)
    return _render_home(household, token, form, 422)


def _render_home(household, token: str, form, status: int = 200):
    settings = svc.town_settings(household.neighborhood.town_id)
    return render_template(
        "requests/public_home.html", token=token, form=form, hours=settings.hours[0],
        household_name=household_label(household), hood_name=household.neighborhood.name,
        rows=svc.household_requests(household.id)), status


def _own_request(token: str, request_id: int):
    """(household, request) when the request belongs to the link's household, else None."""
    household = _household(token)
    if household is None:
        return None, None
    req = svc.load(request_id)
    if req is None or req.household_id != household.id:
        return household, None
    return household, req


@bp.get("/r/<token>/<int:request_id>")
@link_limit
def public_detail(token: str, request_id: int):
    household, req = _own_request(token, request_id)
    if household is None:
        return _invalid()
    if req is None:
        return _invalid(NO_SUCH_REQUEST, token)
    return _render_detail(household, req, token)


def _render_detail(household, req, token: str, rate_form=None, reopen_form=None,
                   status: int = 200):
    now = utcnow()
    eff = svc.effective(req, now)
    until = svc.reopen_until(req)
    problems = [e for f in (rate_form, reopen_form) if f is not None for e in f.form_errors]
    return render_template(
        "requests/public_detail.html", r=req, token=token, eff=eff, now=now,
        household_name=household_label(household), hood_name=household.neighborhood.name,
        left=time_left(eff.time_left(now)) if eff.deadline and not eff.overdue else None,
        responder=RESPONDERS[eff.level], level_names=LEVEL_NAMES, ratings=RATINGS,
        events=[(ev, who(ev)) for ev in svc.timeline(req.id)],
        can_rate=req.status == "closed" and req.rated_at is None,
        reopen_until=until if until is not None and now <= until else None,
        rate_form=rate_form or RateForm(formdata=None),
        reopen_form=reopen_form or ReopenForm(formdata=None),
        problems=problems), status


def _resident_change(token: str, request_id: int, form_class, change):
    """POST of the rating or reopen form: run ``change(req, form, now)``; 303 back to the
    request, or the page again with the message (422)."""
    household, req = _own_request(token, request_id)
    if household is None:
        return _invalid()
    if req is None:
        return _invalid(NO_SUCH_REQUEST, token)
    form = form_class()
    if form.validate_on_submit():
        if attempt(form, lambda: change(req, form, utcnow())):
            message = "谢谢您的评价。" if form_class is RateForm else \
                "已重新打开，会尽快有人跟进。"
            db.session.commit()
            flash(message)
            return redirect(url_for("requests.public_detail", token=token,
                                    request_id=request_id), 303)
        household, req = _own_request(token, request_id)  # the rollback expired them
        if req is None:
            return _invalid(NO_SUCH_REQUEST, token)
    forms = {"rate_form": form} if form_class is RateForm else {"reopen_form": form}
    return _render_detail(household, req, token, status=422, **forms)


@bp.post("/r/<token>/<int:request_id>/rate")
@post_limit
def public_rate(token: str, request_id: int):
    return _resident_change(token, request_id, RateForm, lambda req, form, now: svc.rate(
        req, form.rating.data, form.note.data or "", now))


@bp.post("/r/<token>/<int:request_id>/reopen")
@post_limit
def public_reopen(token: str, request_id: int):
    return _resident_change(token, request_id, ReopenForm, lambda req, form, now: svc.reopen(
        req, form.reason.data, now))


@bp.get("/r/<token>/<int:request_id>/photo")
@link_limit
def public_photo(token: str, request_id: int):
    household = _household(token)
    req = db.session.get(Request, request_id) if household is not None else None
    if req is None or req.household_id != household.id or not req.photo:
        abort(404)
    return send_photo("requests", req.photo)


def _public_error(e):
    """Errors raised before a public view runs (photo too large, too many attempts): a page for
    a resident (no "home" link into the staff login), with the way back to the form. Other
    pages of the blueprint get the app's usual error page."""
    if request.endpoint not in PUBLIC:
        return current_app._find_error_handler(e, [])(e)
    code = e.code
    title, message = MESSAGES[code]
    if code == 413:
        message = ("照片太大，没有提交。请换一张小于 8 MB 的照片，或不附照片再提交一次"
                   "（返回上一页，内容还在）。")
    elif code == 429:
        message = f"提交或打开得太频繁了。为防止滥用，请 {_retry_minutes()} 分钟后再试。"
    token = (request.view_args or {}).get("token")
    return render_template("requests/public_error.html", title=title, message=message,
                           token=token), code


bp.register_error_handler(413, _public_error)
bp.register_error_handler(429, _public_error)


# -- a 三长 records a request for a household -----------------------------------------------------
@bp.route("/households/<int:household_id>/requests/new", methods=["GET", "POST"],
          endpoint="record")
def record_for_household(household_id: int):
    household = get_household_or_404(household_id, "log")
    form = _request_form(household.neighborhood.town_id)
    if request.method == "GET":
        return _render_record(household, form)
    if form.validate_on_submit():
        done = _try_submit(form, household, source="chief", actor=current_user)
        if done is None:
            household = get_household_or_404(household_id, "log")
        else:
            req, created = done
            message = (f"已为{household.head_name}家记录诉求，编号 {req.number}。" if created
                       else f"这条诉求已经记录过了（编号 {req.number}），没有重复保存。")
            target = url_for("requests.detail", request_id=req.id)
            db.session.commit()
            flash(message)
            return redirect(target, 303)
    return _render_record(household, form, 422)


def _render_record(household, form, status: int = 200):
    return render_template("requests/record.html", h=household, form=form), status


# -- the link and its QR code --------------------------------------------------------------------
def _link(token: str) -> str:
    return url_for("requests.public_home", token=token, _external=True)


@bp.get("/households/<int:household_id>/qr")
def qr(household_id: int):
    household = get_household_or_404(household_id)
    if not household.intake_token:  # a household older than the links: make its link now
        svc.ensure_intake_token(current_user, household)
        db.session.commit()
        household = get_household_or_404(household_id)
    link = _link(household.intake_token)
    svg = segno.make(link, error="m").svg_inline(
        scale=1, border=4, dark="#000", light="#fff", omitsize=True, svgclass="qr",
        title="扫码向邻长反映问题")
    return render_template(
        "requests/qr.html", h=household, link=link, svg=svg, confirm=False,
        hours=svc.town_settings(household.neighborhood.town_id).hours[0],
        can_renew=current_scope().allows("manage", household.neighborhood.path))


@bp.route("/households/<int:household_id>/qr/renew", methods=["GET", "POST"])
def renew_link(household_id: int):
    household = get_household_or_404(household_id, "manage")
    form = FlaskForm()  # the CSRF token (checked for every POST by CSRFProtect)
    if request.method == "POST":
        svc.ensure_intake_token(current_user, household, renew=True)
        message = f"已为{household.head_name}家更换链接，旧二维码已失效。请打印新的二维码。"
        db.session.commit()
        flash(message)
        return redirect(url_for("requests.qr", household_id=household_id), 303)
    return render_template("requests/qr.html", h=household, form=form, confirm=True)
