from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length, Regexp

PHONE = Regexp(r"^1[3-9]\d{9}$", message="手机号应为 11 位数字，以 1 开头。")


class LoginForm(FlaskForm):
    phone = StringField("手机号", validators=[DataRequired("请填写手机号。"), PHONE],
                        render_kw={"inputmode": "numeric", "autocomplete": "username",
                                   "maxlength": 11})
    password = PasswordField("密码", validators=[DataRequired("请填写密码。"),
                                                 Length(max=128, message="密码太长。")],
                             render_kw={"autocomplete": "current-password"})


class PasswordForm(FlaskForm):
    current = PasswordField("当前密码", validators=[DataRequired("请填写当前密码。")],
                            render_kw={"autocomplete": "current-password"})
    password = PasswordField("新密码（至少 8 位，不能全是数字）",
                             validators=[DataRequired("请填写新密码。"),
                                         Length(max=128, message="密码太长。")],
                             render_kw={"autocomplete": "new-password"})


class ResetPasswordForm(FlaskForm):
    password = PasswordField("新密码（至少 8 位，不能全是数字）",
                             validators=[DataRequired("请填写新密码。"),
                                         Length(max=128, message="密码太长。")],
                             render_kw={"autocomplete": "new-password"})
