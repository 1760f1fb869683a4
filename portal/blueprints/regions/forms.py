from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    widgets,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from portal.blueprints.regions.models import ROLE_LABELS

PHONE_MSG = "手机号应为 11 位数字，以 1 开头，如 13800138000。"


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class RegionForm(FlaskForm):
    name = StringField("名称", validators=[DataRequired("请填写名称。"),
                                            Length(max=60, message="名称最多 60 字。")])


class HouseholdForm(FlaskForm):
    head_name = StringField("户主姓名", validators=[DataRequired("请填写户主姓名。"),
                                                    Length(max=40, message="姓名最多 40 字。")])
    address = StringField("住址", validators=[DataRequired("请填写住址。"),
                                               Length(max=100, message="住址最多 100 字。")])
    phone = StringField("联系电话（可不填）",
                        validators=[Optional(), Regexp(r"^1[3-9]\d{9}$", message=PHONE_MSG)],
                        render_kw={"inputmode": "numeric", "maxlength": 11})
    member_count = IntegerField("家庭人数", default=1,
                                validators=[InputRequired("请填写家庭人数。"),
                                            NumberRange(1, 30, "家庭人数应在 1 到 30 之间。")],
                                render_kw={"inputmode": "numeric"})
    tags = MultiCheckboxField("特殊人群标签", coerce=int)


class MoveForm(FlaskForm):
    neighborhood_id = SelectField("移到哪个邻", coerce=int,
                                  validators=[InputRequired("请选择一个邻。")])


class PostForm(FlaskForm):
    phone = StringField("手机号", validators=[DataRequired("请填写手机号。"),
                                              Regexp(r"^1[3-9]\d{9}$", message=PHONE_MSG)],
                        render_kw={"inputmode": "numeric", "maxlength": 11})
    name = StringField("姓名（新账号才需要）", validators=[Optional(), Length(max=40)])
    password = PasswordField("初始密码（新账号才需要，至少 8 位）",
                             validators=[Optional(), Length(max=128)],
                             render_kw={"autocomplete": "new-password"})
    role = SelectField("岗位", choices=list(ROLE_LABELS.items()))


class ConfirmForm(FlaskForm):
    confirm = BooleanField("我确认", validators=[DataRequired("请勾选确认。")])


class TagForm(FlaskForm):
    name = StringField("标签名称", validators=[DataRequired("请填写标签名称。"),
                                                Length(max=20, message="标签最多 20 字。")])
