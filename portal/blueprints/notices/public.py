"""The neighbours' side of a call-out (倡议): its public page /cy/<token>, reached from the link
or QR code the 邻长 shares into the WeChat group. No account: name, optional phone, how many
people, a note. The page shows the call-out, how many signed up, and names only as a surname
(张**); never a phone. Rate-limited per client address like the other public forms."""

from flask import current_app, flash, redirect, render_template, request, url_for

from portal.blueprints.notices import bp
from portal.blueprints.notices import services as svc
from portal.blueprints.notices.forms import SignupForm
from portal.clock import utcnow
from portal.errors import attempt
from portal.extensions import db, limiter

#: Endpoints reached without an account (listed in PUBLIC_ENDPOINTS of the app).
PUBLIC = frozenset({"notices.public_callout"})
INVALID = "链接无效。请向发起倡议的邻长索取新的链接。"


def _link_limit() -> str:
    return current_app.config["PUBLIC_LINK_RATE_LIMIT"]


def _post_limit() -> str:
    return current_app.config["PUBLIC_REQUEST_RATE_LIMIT"]


link_limit = limiter.shared_limit(_link_limit, scope="callout-link", methods=["GET"])
post_limit = limiter.shared_limit(_post_limit, scope="callout-post", methods=["POST"])


def masked_name(name: str) -> str:
    """What other neighbours see of a name: the surname only (胡**)."""
    return name[:1] + "**" if name else ""


@bp.route("/cy/<token>", methods=["GET", "POST"])
@link_limit
@post_limit
def public_callout(token: str):
    callout = svc.callout_by_token(token)
    if callout is None:
        return render_template("notices/public_invalid.html", message=INVALID), 404
    form = SignupForm() if request.method == "POST" else SignupForm(formdata=None)
    if request.method == "POST":
        if form.validate_on_submit():
            data = {"name": form.name.data, "phone": form.phone.data, "people": form.people.data,
                    "note": form.note.data}
            holder = {}
            if attempt(form, lambda: holder.setdefault("r", svc.sign_up(callout, data))):
                _, created = holder["r"]
                db.session.commit()
                flash("报名成功，谢谢您！到时见。" if created
                      else "您用这个手机号报过名，已按这次填写的更新。")
                return redirect(url_for("notices.public_callout", token=token, _anchor="done"),
                                303)
            callout = svc.callout_by_token(token)  # the rollback expired it
        return _page(callout, form, 422)
    return _page(callout, form)


def _page(callout, form, status: int = 200):
    rows = svc.signups(callout.id)
    people = sum(r.people for r in rows)
    now = utcnow()
    return render_template(
        "notices/public_callout.html", callout=callout, form=form, people=people,
        names=[masked_name(r.name) for r in rows], count=len(rows),
        closed=svc.closed_reason(callout, people, now),
        left=(callout.cap - people) if callout.cap is not None else None), status
