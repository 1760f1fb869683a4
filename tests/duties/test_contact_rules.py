"""常态化联系机制: the contact state of a household at explicit UTC instants.

Every datetime here is naive UTC, as stored; the comment next to it gives the wall-clock time in
Asia/Shanghai (UTC+8), which is what periods are counted in.
"""

from datetime import date, datetime

import pytest
from sqlalchemy import case, insert, select

from portal.blueprints.duties import services as svc
from portal.blueprints.duties.models import ContactRule
from portal.blueprints.regions.models import Household
from portal.extensions import db

DEFAULT = (("special", "visit", "month"), ("special", "any", "week"),
           ("ordinary", "visit", "quarter"))


def rules_at(now, specs=DEFAULT):
    """{category: [Window]} for transient rules (category, method, period) at ``now``."""
    rules = [ContactRule(category=c, method=m, period=p) for c, m, p in specs]
    out = {"special": [], "ordinary": []}
    for rule, window in zip(rules, svc.windows(rules, now), strict=True):
        out[rule.category].append(window)
    return out


def hh(*, id=1, created=datetime(2024, 1, 1), special=None, visit=None, contact=None):
    """A transient household; ``contact`` (any method) defaults to the visit, as log_duty
    keeps it (a visit is a contact too)."""
    return Household(id=id, created_at=created, special_since=special, last_visit_at=visit,
                     last_contact_at=contact if contact is not None else visit)


def state(household, now, specs=DEFAULT):
    return svc.contact_state(household, rules_at(now, specs)).state


SPECIAL = datetime(2024, 1, 1)  # special since long ago
VISIT_ONLY_MONTH = (("special", "visit", "month"), ("ordinary", "visit", "quarter"))
WEEK_ONLY = (("special", "any", "week"), ("ordinary", "visit", "quarter"))


# -- periods -----------------------------------------------------------------------------------
@pytest.mark.parametrize("period, day, start, nxt, prev", [
    ("week", date(2026, 1, 4), date(2025, 12, 29), date(2026, 1, 5), date(2025, 12, 22)),
    ("week", date(2026, 1, 5), date(2026, 1, 5), date(2026, 1, 12), date(2025, 12, 29)),
    ("month", date(2026, 1, 31), date(2026, 1, 1), date(2026, 2, 1), date(2025, 12, 1)),
    ("month", date(2025, 12, 31), date(2025, 12, 1), date(2026, 1, 1), date(2025, 11, 1)),
    ("month", date(2024, 2, 29), date(2024, 2, 1), date(2024, 3, 1), date(2024, 1, 1)),
    ("quarter", date(2026, 3, 31), date(2026, 1, 1), date(2026, 4, 1), date(2025, 10, 1)),
    ("quarter", date(2026, 4, 1), date(2026, 4, 1), date(2026, 7, 1), date(2026, 1, 1)),
    ("quarter", date(2025, 12, 31), date(2025, 10, 1), date(2026, 1, 1), date(2025, 7, 1)),
    ("quarter", date(2026, 1, 1), date(2026, 1, 1), date(2026, 4, 1), date(2025, 10, 1)),
])
def test_period_bounds(period, day, start, nxt, prev):
    assert svc.period_start(period, day) == start
    assert svc.next_period_start(period, start) == nxt
    assert svc.previous_period_start(period, start) == prev


def test_windows_are_shanghai_midnights_in_utc():
    # 2026-01-01 00:30 Shanghai: already Q1 2026 locally, still 2025 in UTC
    now = datetime(2025, 12, 31, 16, 30)
    quarter, month, week = svc.windows(
        [ContactRule(category="ordinary", method="visit", period=p)
         for p in ("quarter", "month", "week")], now)
    assert (quarter.prev_start, quarter.start, quarter.end) == (
        datetime(2025, 9, 30, 16), datetime(2025, 12, 31, 16), datetime(2026, 3, 31, 16))
    assert (month.prev_start, month.start, month.end) == (
        datetime(2025, 11, 30, 16), datetime(2025, 12, 31, 16), datetime(2026, 1, 31, 16))
    # Thursday 1 January 2026: the week began Monday 29 December 00:00 Shanghai
    assert (week.prev_start, week.start, week.end) == (
        datetime(2025, 12, 21, 16), datetime(2025, 12, 28, 16), datetime(2026, 1, 4, 16))


# -- month end ---------------------------------------------------------------------------------
LATE_JAN_31 = datetime(2026, 1, 31, 15, 30)  # 2026-01-31 23:30 Shanghai → January
EARLY_FEB_1 = datetime(2026, 1, 31, 16, 30)  # 2026-02-01 00:30 Shanghai → February


@pytest.mark.parametrize("visit, now, expected", [
    # just after local midnight on 1 Feb (still 31 Jan in UTC): the 23:30 visit was January's
    (LATE_JAN_31, datetime(2026, 1, 31, 16, 45), "due"),
    (EARLY_FEB_1, datetime(2026, 1, 31, 16, 45), "ok"),
    # mid-February
    (LATE_JAN_31, datetime(2026, 2, 10, 4), "due"),
    (EARLY_FEB_1, datetime(2026, 2, 10, 4), "ok"),
    # last minute of February, Shanghai (28 Feb 23:59 = 15:59 UTC)
    (EARLY_FEB_1, datetime(2026, 2, 28, 15, 59), "ok"),
    # 1 March 00:00 Shanghai: February is over
    (EARLY_FEB_1, datetime(2026, 2, 28, 16, 0), "due"),
    # mid-March: the January visit leaves February missed → overdue; the February one is due
    (LATE_JAN_31, datetime(2026, 3, 10, 4), "overdue"),
    (EARLY_FEB_1, datetime(2026, 3, 10, 4), "due"),
    # 31 Jan 23:59 Shanghai: the 23:30 visit is this month's
    (LATE_JAN_31, datetime(2026, 1, 31, 15, 59), "ok"),
])
def test_month_end_counts_in_shanghai_time(visit, now, expected):
    household = hh(special=SPECIAL, visit=visit)
    assert state(household, now, VISIT_ONLY_MONTH) == expected


# -- quarter end -------------------------------------------------------------------------------
LATE_MAR_31 = datetime(2026, 3, 31, 15, 59)  # 2026-03-31 23:59 Shanghai → Q1
APR_1_MIDNIGHT = datetime(2026, 3, 31, 16, 0)  # 2026-04-01 00:00 Shanghai → Q2


@pytest.mark.parametrize("visit, now, expected", [
    (LATE_MAR_31, datetime(2026, 3, 31, 15, 59, 30), "ok"),
    (LATE_MAR_31, datetime(2026, 3, 31, 16, 10), "due"),  # 1 Apr 00:10 Shanghai
    (APR_1_MIDNIGHT, datetime(2026, 3, 31, 16, 10), "ok"),
    (APR_1_MIDNIGHT, datetime(2026, 6, 30, 15, 59), "ok"),  # 30 Jun 23:59 Shanghai
    (APR_1_MIDNIGHT, datetime(2026, 6, 30, 16, 0), "due"),  # 1 Jul 00:00 Shanghai
    (LATE_MAR_31, datetime(2026, 6, 30, 16, 0), "overdue"),  # Q2 missed entirely
    (LATE_MAR_31, datetime(2026, 6, 30, 15, 59), "due"),  # Q2 not over yet
])
def test_quarter_end(visit, now, expected):
    assert state(hh(visit=visit), now) == expected


@pytest.mark.parametrize("visit, now, expected", [
    # visited 31 Dec 2025 23:30 Shanghai (Q4 2025); now 1 Jan 2026 00:30 Shanghai
    (datetime(2025, 12, 31, 15, 30), datetime(2025, 12, 31, 16, 30), "due"),
    # visited 1 Jan 2026 00:10 Shanghai: Q1 2026 although it is still 2025 in UTC
    (datetime(2025, 12, 31, 16, 10), datetime(2025, 12, 31, 16, 30), "ok"),
    (datetime(2025, 12, 31, 16, 10), datetime(2026, 3, 31, 15, 0), "ok"),
    # Q4 2025 visit, all of Q1 2026 passes: overdue on 1 Apr
    (datetime(2025, 12, 31, 15, 30), datetime(2026, 3, 31, 16, 0), "overdue"),
    # Q3 2025 visit: Q4 missed, overdue from 1 Jan 2026 00:00 Shanghai
    (datetime(2025, 9, 30, 15, 0), datetime(2025, 12, 31, 15, 59), "due"),
    (datetime(2025, 9, 30, 15, 0), datetime(2025, 12, 31, 16, 0), "overdue"),
])
def test_quarter_end_across_the_year_change(visit, now, expected):
    assert state(hh(visit=visit), now) == expected


# -- week boundary -----------------------------------------------------------------------------
MONDAY_0030 = datetime(2026, 1, 4, 16, 30)  # Mon 2026-01-05 00:30 Shanghai (Sunday in UTC)


@pytest.mark.parametrize("call, now, expected", [
    (datetime(2026, 1, 4, 15, 59), MONDAY_0030, "due"),  # Sun 23:59 Shanghai: last week
    (datetime(2026, 1, 4, 16, 0), MONDAY_0030, "ok"),  # Mon 00:00 Shanghai: this week
    (datetime(2026, 1, 4, 15, 59), datetime(2026, 1, 4, 15, 59, 30), "ok"),  # still Sunday
    # the week of 5–11 Jan passes without a call: overdue from Mon 12 Jan 00:00 Shanghai
    (datetime(2026, 1, 4, 15, 59), datetime(2026, 1, 11, 15, 59), "due"),
    (datetime(2026, 1, 4, 15, 59), datetime(2026, 1, 11, 16, 0), "overdue"),
])
def test_week_starts_monday_midnight_shanghai(call, now, expected):
    household = hh(special=SPECIAL, contact=call)
    assert state(household, now, WEEK_ONLY) == expected


# -- when the rule starts to apply -------------------------------------------------------------
NOW = datetime(2026, 1, 21, 4, 0)  # Wed 2026-01-21 12:00 Shanghai


def test_tag_added_today_makes_a_visited_household_due_not_overdue():
    # ordinary, visited last quarter (2025-11-10): due under the quarterly rule
    household = hh(visit=datetime(2025, 11, 10, 2))
    assert state(household, NOW) == "due"
    # a 独居老人 tag is added this morning: the special rules apply from now on. No monthly
    # visit in December and no call last week, but the rules did not apply then.
    household.special_since = datetime(2026, 1, 21, 1, 0)
    st = svc.contact_state(household, rules_at(NOW))
    assert st.state == "due"
    assert st.deadline == datetime(2026, 1, 31, 16)  # the visit-monthly rule: by 1 Feb Shanghai


def test_tag_added_today_to_an_overdue_household_gives_it_a_fresh_start():
    household = hh(visit=datetime(2025, 5, 10, 2))
    assert state(household, NOW) == "overdue"
    household.special_since = datetime(2026, 1, 21, 1, 0)
    assert state(household, NOW) == "due"


def test_tag_added_last_month_without_any_contact_is_due_then_overdue():
    # tagged on 2025-12-20 Shanghai, never contacted since
    household = hh(special=datetime(2025, 12, 20, 2), visit=datetime(2025, 6, 1))
    assert state(household, NOW) == "due"  # December was partial; January not over
    assert state(household, datetime(2026, 2, 2, 4)) == "overdue"  # January passed


def test_new_household_never_contacted_is_due_not_overdue():
    created_today = hh(created=datetime(2026, 1, 21, 1))
    created_last_quarter = hh(created=datetime(2025, 12, 30, 1))
    assert state(created_today, NOW) == "due"
    assert state(created_last_quarter, NOW) == "due"
    st = svc.contact_state(created_today, rules_at(NOW))
    assert st.deadline == datetime(2026, 3, 31, 16)  # end of Q1 2026 in Shanghai


def test_never_contacted_household_is_overdue_once_a_whole_period_passed():
    # created in Q3 2025; all of Q4 passed without a visit
    assert state(hh(created=datetime(2025, 9, 1)), NOW) == "overdue"
    # special since 2025-11-20, never contacted: December passed without a visit and more
    # than a whole week without any contact
    assert state(hh(special=datetime(2025, 11, 20)), NOW) == "overdue"


def test_missed_whole_period_is_overdue():
    assert state(hh(visit=datetime(2025, 9, 20)), NOW) == "overdue"  # Q3 visit, Q4 missed
    assert state(hh(visit=datetime(2025, 10, 1)), NOW) == "due"  # Q4 visit
    assert state(hh(visit=datetime(2026, 1, 2)), NOW) == "ok"  # Q1 visit


def test_a_phone_call_does_not_count_as_a_visit_for_visit_rules():
    household = hh(visit=datetime(2025, 9, 20), contact=datetime(2026, 1, 20, 2))
    assert state(household, NOW) == "overdue"


# -- either rule -------------------------------------------------------------------------------
def test_special_household_phone_call_this_week_is_ok_even_without_monthly_visit():
    household = hh(special=SPECIAL, visit=datetime(2025, 10, 10),
                   contact=datetime(2026, 1, 19, 1))  # Mon 19 Jan 09:00 Shanghai
    assert state(household, NOW) == "ok"
    assert state(household, NOW, VISIT_ONLY_MONTH) == "overdue"


def test_special_household_monthly_visit_is_ok_without_weekly_call():
    household = hh(special=SPECIAL, visit=datetime(2026, 1, 3, 2))  # 3 Jan, weeks ago
    assert state(household, NOW) == "ok"
    assert state(household, NOW, WEEK_ONLY) == "overdue"


def test_special_household_takes_the_best_of_its_rules():
    # call last week (weekly due), visit in November (monthly overdue) → due
    household = hh(special=SPECIAL, visit=datetime(2025, 11, 10),
                   contact=datetime(2026, 1, 14, 2))
    st = svc.contact_state(household, rules_at(NOW))
    assert st.state == "due"
    assert st.deadline == datetime(2026, 1, 25, 16)  # by Monday 26 Jan 00:00 Shanghai
    # neither: overdue
    household.last_contact_at = datetime(2026, 1, 2)
    assert state(household, NOW) == "overdue"


def test_a_visit_counts_as_any_contact():
    # a visit this week satisfies the weekly "any contact" rule on its own
    household = hh(special=SPECIAL, visit=datetime(2026, 1, 20, 2))
    assert state(household, NOW, WEEK_ONLY) == "ok"


def test_rules_edited_only_weekly_rule_active():
    # visited on 5 Jan Shanghai: fine for "monthly visit", but two weeks without contact
    household = hh(special=SPECIAL, visit=datetime(2026, 1, 5, 2))
    assert state(household, NOW) == "ok"
    assert state(household, NOW, WEEK_ONLY) == "overdue"
    # with the weekly rule only, a call made on Tuesday is enough
    household.last_contact_at = datetime(2026, 1, 20, 2)
    assert state(household, NOW, WEEK_ONLY) == "ok"


def test_ordinary_rule_changed_to_monthly():
    monthly = (("special", "any", "week"), ("ordinary", "visit", "month"))
    household = hh(visit=datetime(2025, 11, 20))
    assert state(household, NOW) == "due"  # quarterly: the Q4 visit counts
    assert state(household, NOW, monthly) == "overdue"  # monthly: December was missed


def test_category_without_active_rule_asks_nothing():
    household = hh(visit=datetime(2020, 1, 1))
    assert state(household, NOW, (("special", "any", "week"),)) == "ok"


# -- sort order --------------------------------------------------------------------------------
def test_sort_overdue_longest_waiting_first_then_due_then_ok():
    windows = rules_at(NOW)
    rows = {
        "overdue_2024": hh(id=10, created=datetime(2024, 3, 1)),  # never contacted
        "overdue_2025": hh(id=3, visit=datetime(2025, 6, 1)),
        "overdue_special": hh(id=4, special=SPECIAL, visit=datetime(2025, 11, 1)),
        "due_week": hh(id=5, special=SPECIAL, visit=datetime(2025, 12, 20),
                       contact=datetime(2026, 1, 13)),
        "due_quarter_old": hh(id=9, visit=datetime(2025, 10, 2)),
        "due_quarter_new": hh(id=6, created=datetime(2026, 1, 10)),
        "ok_month": hh(id=8, special=SPECIAL, visit=datetime(2026, 1, 20)),
        "ok_quarter": hh(id=7, visit=datetime(2026, 1, 2)),
    }
    names = {h.id: name for name, h in rows.items()}
    ordered = svc.sort_households(list(reversed(rows.values())), lambda h: windows)
    assert [(names[h.id], st.state) for h, st in ordered] == [
        ("overdue_2024", "overdue"),
        ("overdue_2025", "overdue"),
        ("overdue_special", "overdue"),
        # special, called last week: due this month (the monthly-visit rule's deadline)
        ("due_week", "due"),
        # both due by the end of the quarter: the one waiting since October first
        ("due_quarter_old", "due"),
        ("due_quarter_new", "due"),
        ("ok_month", "ok"),
        ("ok_quarter", "ok"),
    ]


def test_days_left_counts_local_calendar_days():
    st = svc.contact_state(hh(created=datetime(2026, 1, 10)), rules_at(NOW))
    assert st.days_left(NOW) == 70  # 21 Jan … 31 Mar, today included
    # last day of the quarter, 23:00 Shanghai: due today
    late = datetime(2026, 3, 31, 15)
    st = svc.contact_state(hh(created=datetime(2026, 1, 10)), rules_at(late))
    assert st.days_left(late) == 1


# -- the SQL mirror ----------------------------------------------------------------------------
INSTANTS = [
    None,
    datetime(2024, 6, 1),
    datetime(2025, 9, 30, 15, 59),  # Q3/Q4 boundary in Shanghai
    datetime(2025, 9, 30, 16, 0),
    datetime(2025, 11, 30, 16, 0),  # 1 Dec Shanghai
    datetime(2025, 12, 31, 15, 59),  # 31 Dec 23:59 Shanghai
    datetime(2025, 12, 31, 16, 0),  # 1 Jan 2026 00:00 Shanghai
    datetime(2026, 1, 11, 15, 59),  # Sun 11 Jan 23:59 Shanghai
    datetime(2026, 1, 11, 16, 0),  # Mon 12 Jan 00:00 Shanghai
    datetime(2026, 1, 20, 2, 0),
]
CREATED = [datetime(2024, 6, 1), datetime(2025, 12, 31, 16, 0), datetime(2026, 1, 20, 2)]
NOWS = [
    datetime(2026, 1, 21, 4, 0),
    datetime(2025, 12, 31, 16, 30),  # 1 Jan 2026 00:30 Shanghai
    datetime(2026, 1, 11, 16, 0),  # Mon 12 Jan 00:00 Shanghai
    datetime(2026, 3, 31, 16, 0),  # 1 Apr 2026 00:00 Shanghai
    datetime(2026, 2, 28, 15, 59),
]


@pytest.fixture
def varied_households(make_region):
    """Households with every combination of special_since / created_at / last visit /
    last contact from INSTANTS (a contact never earlier than the visit, as log_duty keeps it,
    plus some rows where it is)."""
    town = make_region("一致镇")
    hood = make_region("邻", make_region("组", make_region("片", make_region("村", town))))
    rows = []
    for special in INSTANTS[::2] + [INSTANTS[9]]:
        for created in CREATED:
            for visit in INSTANTS:
                for contact in INSTANTS:
                    rows.append({
                        "neighborhood_id": hood.id, "address": "一致路", "head_name": "户",
                        "member_count": 1, "created_at": created, "updated_at": created,
                        "special_since": special, "last_visit_at": visit,
                        "last_contact_at": contact,
                        "last_contact_method": "phone" if contact else None})
    db.session.execute(insert(Household), rows)
    db.session.commit()
    return town


@pytest.mark.parametrize("specs", [
    DEFAULT,
    WEEK_ONLY,
    (("special", "visit", "month"), ("special", "visit", "quarter"),
     ("ordinary", "any", "month"), ("ordinary", "visit", "week")),
    (("special", "any", "week"),),  # ordinary households: no active rule
], ids=["default", "week-only", "mixed", "no-ordinary-rule"])
def test_overdue_sql_agrees_with_contact_state(varied_households, specs):
    households = list(db.session.scalars(select(Household).where(
        Household.address == "一致路")))
    assert len(households) > 1000
    states_seen = set()
    for now in NOWS:
        by_cat = rules_at(now, specs)
        python = {h.id: svc.contact_state(h, by_cat).state == "overdue" for h in households}
        states_seen |= {svc.contact_state(h, by_cat).state for h in households}
        flag = case((svc.overdue_sql(by_cat), 1), else_=0)
        sql = dict(db.session.execute(select(Household.id, flag).where(
            Household.address == "一致路")).all())
        wrong = [(h.special_since, h.created_at, h.last_visit_at, h.last_contact_at,
                  python[h.id]) for h in households if bool(sql[h.id]) != python[h.id]]
        assert not wrong, (now, len(wrong), wrong[:5])
        # as a WHERE clause, both ways (NULL would fall out of both)
        overdue = set(db.session.scalars(select(Household.id).where(
            Household.address == "一致路", svc.overdue_sql(by_cat))))
        not_overdue = set(db.session.scalars(select(Household.id).where(
            Household.address == "一致路", ~svc.overdue_sql(by_cat))))
        assert overdue == {k for k, v in python.items() if v}, now
        assert not_overdue == {k for k, v in python.items() if not v}, now
    assert states_seen == {"ok", "due", "overdue"}


def test_rule_windows_reads_the_towns_active_rules(make_region):
    town = make_region("规则镇")
    by_cat = svc.rule_windows(town.id, NOW)
    assert [w.rule_method for w in by_cat["special"]] == ["visit", "any"]
    assert [w.rule_method for w in by_cat["ordinary"]] == ["visit"]
    weekly = by_cat["special"][1]
    assert (weekly.start, weekly.end) == (datetime(2026, 1, 18, 16), datetime(2026, 1, 25, 16))
    rule = db.session.scalar(select(ContactRule).where(
        ContactRule.town_id == town.id, ContactRule.method == "visit",
        ContactRule.category == "special"))
    rule.active = False
    db.session.commit()
    assert [w.rule_method for w in svc.rule_windows(town.id, NOW)["special"]] == ["any"]
