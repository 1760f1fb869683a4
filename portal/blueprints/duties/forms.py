from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    FieldList,
    FormField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Regexp

from portal.blueprints.duties.models import (
    CATEGORIES,
    CHECKLIST_KINDS,
    METHODS,
    PERIODS,
    RULE_METHODS,
)
from portal.forms import DATETIME_FORMATS, unix_newlines

TOKEN = Regexp(r"^[0-9a-f-]{36}$", message="表单已失效，请重新打开。")
DUTY_MESSAGE = "请选择一项七员职责。"
METHOD_MESSAGE = "请选择联系方式。"
TIME_MESSAGE = "请填写时间，如 2026-11-22 09:30。"
#: The picker sends the first; a browser without one shows a text box where people type the
#: second (as the hint says); some pickers add seconds.


class DutyLogForm(FlaskForm):
    # choices (this town's active 七员 items) are set by the view
    duty_item_id = RadioField("职责", coerce=int, validators=[InputRequired(DUTY_MESSAGE)],
                              invalid_choice_message=DUTY_MESSAGE,
                              invalid_value_message=DUTY_MESSAGE)
    method = RadioField("方式", choices=METHODS, default="visit",
                        validators=[InputRequired(METHOD_MESSAGE)],
                        invalid_choice_message=METHOD_MESSAGE)
    occurred_at = DateTimeLocalField(
        "时间", format=DATETIME_FORMATS, validators=[InputRequired(TIME_MESSAGE)],
        invalid_value_message="时间格式不对，请按 2026-11-22 09:30 的样子填写。")
    note = TextAreaField("情况记录（可不填）", filters=[unix_newlines],
                         validators=[Length(max=500, message="记录最多 500 字。")],
                         render_kw={"rows": 2, "maxlength": 500})
    photo = FileField("照片（可不拍）", render_kw={"accept": "image/*"})
    token = HiddenField(validators=[DataRequired("表单已失效，请重新打开。"), TOKEN])


class ChecklistItemForm(FlaskForm):
    kind = SelectField("清单", choices=CHECKLIST_KINDS, invalid_choice_message="请选择清单。")
    title = StringField("名称", validators=[DataRequired("请填写名称。"),
                                            Length(max=40, message="名称最多 40 字。")])
    description = TextAreaField("说明", validators=[Length(max=500, message="说明最多 500 字。")],
                                render_kw={"rows": 3})
    active = BooleanField("启用", default=True)


class ContactRuleForm(FlaskForm):
    """One row of the rules editor; the page holds several, prefixed rule-<n>-."""

    class Meta:
        csrf = False

    id = HiddenField()
    category = SelectField("对象", choices=CATEGORIES, invalid_choice_message="请选择对象。")
    period = SelectField("周期", choices=PERIODS, invalid_choice_message="请选择周期。")
    method = SelectField("方式", choices=RULE_METHODS, invalid_choice_message="请选择方式。")
    active = BooleanField("启用")
    delete = BooleanField("删除")


class RulesForm(FlaskForm):
    """The town's rules, plus one blank row at the end for adding a rule."""

    rules = FieldList(FormField(ContactRuleForm), min_entries=0, max_entries=20)


class VoidLogForm(FlaskForm):
    """作废 a duty log: the reason is required (checked by the service: 2 to 200 characters)."""

    reason = TextAreaField("作废理由", filters=[unix_newlines],
                           render_kw={"rows": 3, "maxlength": 200,
                                      "placeholder": "如：记错了户，实际走访的是隔壁一户"})
