from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload, undefer

from portal.blueprints.auth import bp
from portal.blueprints.auth.forms import LoginForm, PasswordForm, ResetPasswordForm
from portal.blueprints.auth.models import User
from portal.blueprints.auth.services import authenticate, change_password, reset_password
from portal.blueprints.regions.models import Post
from portal.errors import attempt
from portal.extensions import db, limiter, login_manager
from portal.scope import get_user_or_404


@login_manager.user_loader
def load_user(session_id: str):
    """One query: the user, their posts and the posts' regions (the scope needs all three), and
    the count of their unread notices (notices.models)."""
    try:
        user_id, generation = (int(x) for x in session_id.split("."))
    except ValueError:
        return None
    user = db.session.execute(
        select(User).options(joinedload(User.posts).joinedload(Post.region),
                             undefer(User.unread_notices))  # the nav's 通知 badge
        .where(User.id == user_id)
    ).unique().scalar_one_or_none()
    if user is None or not user.active or user.session_generation != generation:
        return None  # a deactivated account's open sessions end too
    return user


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else the home page (no open redirect).

    Browsers read ``/\\host`` as ``//host`` and drop tabs and newlines from URLs (so
    ``/<tab>/host`` becomes ``//host`` too); such targets are refused outright.
    """
    if (target and target.startswith("/") and not target.startswith("//")
            and "\\" not in target and target.isprintable()):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("home")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("home"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        user = authenticate(form.phone.data, form.password.data)
        if user is not None:
            session.clear()
            session.permanent = True
            login_user(user)
            db.session.commit()
            return redirect(_safe_next(request.args.get("next")), 303)
        form.password.errors.append("手机号或密码不对。")
    if request.method == "POST":
        status = 422
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout():
    logout_user()
    session.clear()
    flash("已退出。")
    return redirect(url_for("auth.login"), 303)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password():
    form = PasswordForm()
    status = 200
    if form.validate_on_submit() and attempt(
            form, lambda: change_password(current_user, form.current.data, form.password.data)):
        db.session.commit()
        login_user(current_user)  # re-issue the session id with the new generation
        flash("密码已修改，其他设备上的登录已失效。")
        return redirect(url_for("home"), 303)
    if request.method == "POST":
        status = 422
    return render_template("auth/password.html", form=form), status


@bp.route("/users/<int:user_id>/password", methods=["GET", "POST"])
def reset(user_id: int):
    """Village or town staff reset the password of someone whose posts they all manage."""
    user, region_path = get_user_or_404(user_id, "manage")
    back = _safe_next(request.args.get("back"))
    form = ResetPasswordForm()
    if form.validate_on_submit() and attempt(
            form, lambda: reset_password(current_user, user, form.password.data, region_path)):
        db.session.commit()
        flash(f"已重置 {user.name} 的密码，请当面告诉本人并提醒登录后修改。")
        return redirect(back, 303)
    status = 422 if request.method == "POST" else 200
    return render_template("auth/reset.html", form=form, user=user, back=back), status
