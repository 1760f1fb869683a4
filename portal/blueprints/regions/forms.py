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


class ChineseMessages:
    """WTForms' built-in messages (bad number, choice not in the list …) in Chinese.

    Without it a field like 家庭人数 answers "Not a valid integer value." to a typo.
    """

    MESSAGES = {
        "Not a valid integer value.": "请填写数字。",
        "Not a valid choice.": "请从列表中选择。",
        "Invalid Choice: could not coerce.": "请从列表中选择。",
        "Invalid choice(s): one or more data inputs could not be coerced.": "请从列表中选择。",
        "'%(value)s' is not a valid choice for this field.": "“%(value)s”不在可选范围内。",
        "'%(value)s' are not valid choices for this field.": "“%(value)s”不在可选范围内。",
        "This field is required.": "请填写此项。",
        "Invalid input.": "填写的格式不对。",
        "Field cannot be longer than %(max)d character.": "最多 %(max)d 字。",
        "Field cannot be longer than %(max)d characters.": "最多 %(max)d 字。",
        "Field must be at least %(min)d character long.": "至少 %(min)d 字。",
        "Field must be at least %(min)d characters long.": "至少 %(min)d 字。",
        "Number must be between %(min)s and %(max)s.": "应在 %(min)s 到 %(max)s 之间。",
    }

    def gettext(self, string):
        return self.MESSAGES.get(string, string)

    def ngettext(self, singular, plural, n):
        return self.gettext(singular if n == 1 else plural)


class Form(FlaskForm):
    class Meta:
        def get_translations(self, form):
            return ChineseMessages()


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class RegionForm(Form):
    name = StringField("名称", validators=[DataRequired("请填写名称。"),
                                            Length(max=60, message="名称最多 60 字。")])


class HouseholdForm(Form):
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


class MoveForm(Form):
    neighborhood_id = SelectField("移到哪个邻", coerce=int,
                                  validators=[InputRequired("请选择一个邻。")])


class PostForm(Form):
    phone = StringField("手机号", validators=[DataRequired("请填写手机号。"),
                                              Regexp(r"^1[3-9]\d{9}$", message=PHONE_MSG)],
                        render_kw={"inputmode": "numeric", "maxlength": 11})
    name = StringField("姓名（新账号才需要）",
                       validators=[Optional(), Length(max=40, message="姓名最多 40 字。")])
    password = PasswordField("初始密码（新账号才需要，至少 8 位）",
                             validators=[Optional(),
                                         Length(max=128, message="密码最多 128 位。")],
                             render_kw={"autocomplete": "new-password"})
    #: Admins are made on the command line (flask create-user), not through this form.
    role = SelectField("岗位", choices={k: v for k, v in ROLE_LABELS.items() if k != "admin"})


class ConfirmForm(Form):
    confirm = BooleanField("我确认", validators=[DataRequired("请勾选确认。")])


class TagForm(Form):
    name = StringField("标签名称", validators=[DataRequired("请填写标签名称。"),
                                                Length(max=20, message="标签最多 20 字。")])
