"""Forms of notices and call-outs. The forms parse and cap sizes; the services decide (and say
why, naming the field)."""

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    IntegerField,
    SelectField,
    SelectMultipleField,
)
from wtforms.validators import InputRequired, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from portal.forms import DATETIME_FORMATS, text_area, text_line


class NoticeForm(FlaskForm):
    region_id = SelectField("发给", coerce=int, validate_choice=False,
                            invalid_value_message="请选择发给哪里。")
    title = text_line("标题", 60, placeholder="如：关于开展冬季防火安全检查的通知")
    body = text_area("正文", 5000, rows=8)


class ConfirmForm(FlaskForm):
    confirm = BooleanField("确认")


class CallOutForm(FlaskForm):
    region_id = SelectField("范围", coerce=int, validate_choice=False,
                            invalid_value_message="请选择您负责的邻或组。")
    title = text_line("倡议标题", 40, placeholder="如：一起清理篮球坪杂草")
    task = text_area("要做的事", 1000, rows=4,
                 placeholder="如：暑假来了，请有时间的居民一起扯杂草，给孩子们多一点活动场地。")
    starts_at = DateTimeLocalField("时间", format=DATETIME_FORMATS, validators=[Optional()])
    place = text_line("地点", 60, placeholder="如：杨家井组篮球坪")
    cap = IntegerField("人数上限（可不填）",
                       invalid_value_message="人数上限应为 1–500，不限就不填。", validators=[Optional(), NumberRange(
        1, 500, "人数上限应为 1–500，不限就不填。")],
        render_kw={"min": 1, "max": 500, "inputmode": "numeric"})


class SignupForm(FlaskForm):
    name = text_line("姓名", 20, autocomplete="name")
    phone = text_line("手机号（可不填）", 11, inputmode="numeric", autocomplete="tel")
    people = IntegerField("几个人来", default=1, invalid_value_message="请填写人数（1–10）。",
                          validators=[
        InputRequired("请填写人数（1–10）。"), NumberRange(1, 10, "人数应为 1–10。")],
        render_kw={"min": 1, "max": 10, "inputmode": "numeric"})
    note = text_line("备注（可不填）", 100, placeholder="如：带锄头来")


class LogForm(FlaskForm):
    households = SelectMultipleField("参加的联系户", coerce=int, validate_choice=False,
                                     widget=ListWidget(prefix_label=False),
                                     option_widget=CheckboxInput())
    duty_item_id = SelectField("记为", coerce=int, validate_choice=False,
                               invalid_value_message="请选择记为哪一项七员职责。")
