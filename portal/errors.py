"""Error pages, and the exception services raise for input they refuse."""

import time

from flask import render_template, request

from portal.htmx import hx_target


class ServiceError(Exception):
    """A rule refused the input; ``field`` names the form field to show it on, if any."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


def clean_text(text: str | None, what: str, limit: int, minimum: int = 0,
               field: str | None = None) -> str:
    """A form's free text, stripped and with Unix newlines; refused (on ``field``) when shorter
    than ``minimum`` or longer than ``limit`` characters."""
    text = (text or "").replace("\r\n", "\n").strip()
    if len(text) < minimum:
        raise ServiceError(f"请填写{what}" + (f"（至少 {minimum} 个字）" if minimum > 1 else "")
                           + "。", field)
    if len(text) > limit:
        raise ServiceError(f"{what}最多 {limit} 字。", field)
    return text


MESSAGES = {
    400: ("请求无效", "页面已过期或请求不完整。请返回上一页，刷新后重试。"),
    403: ("无权操作", "您的岗位没有这项操作的权限。如需办理，请联系村(社区)或镇干部。"),
    404: ("找不到页面", "该内容不存在，或不在您负责的范围内。"),
    413: ("文件太大", "上传的文件太大（照片请小于 8 MB）。请换一张较小的照片后重试。"),
    429: ("操作太频繁", "操作太频繁。请 {minutes} 分钟后再试。"),
    500: ("系统出错", "系统暂时出错，已记录。请稍后重试。"),
}


def register(app):
    from flask_wtf.csrf import CSRFError

    def render(code: int, detail: str | None = None):
        title, message = MESSAGES[code]
        template = "errors/_error.html" if hx_target() else "errors/error.html"
        return render_template(template, code=code, title=title,
                               message=detail or message), code

    for code in (403, 404, 413, 500):
        app.register_error_handler(code, lambda e, code=code: render(code))

    @app.errorhandler(429)
    def too_many_requests(e):
        wait = _retry_minutes()
        if request.endpoint == "auth.login":
            return render(429, f"登录尝试次数过多，为保护账号已暂时锁定。请 {wait} 分钟后再试。")
        return render(429, MESSAGES[429][1].format(minutes=wait))

    @app.errorhandler(PermissionError)
    def refused(e):
        """A service refused the caller's role (see ``agenda.services._need``)."""
        return render(403, str(e) or None)

    @app.errorhandler(400)
    def bad_request(e):
        return render(400)

    @app.errorhandler(CSRFError)
    def csrf_error(e):
        return render(400, "安全校验失败（页面停留太久或已在别处退出）。请刷新页面后重新提交。")

    @app.after_request
    def private_pages(response):
        """Pages may hold personal data: no shared caches; htmx partials not even in the
        browser's (nor in htmx's history)."""
        if request.endpoint != "static" and response.mimetype == "text/html":
            response.headers.setdefault(
                "Cache-Control", "no-store" if request.headers.get("HX-Request")
                else "private, no-cache")
        return response


def _retry_minutes() -> int:
    """Whole minutes until the rate limit that refused this request lets the client in again."""
    from portal.extensions import limiter

    current = limiter.current_limit
    if current is None:
        return 1
    return max(1, round((current.reset_at - time.time()) / 60))


def show_on_form(form, error: ServiceError) -> None:
    """Put a service's refusal on the form field it names, or on the form as a whole."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors.append(error.message)
    else:
        form.form_errors.append(error.message)


def attempt(form, change) -> bool:
    """Run ``change()``; if a rule refuses, roll the session back, show why on ``form`` and
    return False (the view then re-renders the form with 422)."""
    from portal.extensions import db

    try:
        change()
    except ServiceError as e:
        db.session.rollback()
        show_on_form(form, e)
        return False
    return True
