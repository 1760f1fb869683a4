"""履职评议 figures on a small hand-built data set where every number is worked out by hand.

The period is 2026Q3 (1 July – 30 September, Asia/Shanghai), reviewed on 16 November 2026.
The town's contact rules are replaced by: an ordinary household is on time with a contact of any
kind every month, or a 上门 visit once in the quarter; a special household needs a visit every
month."""

import uuid
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from portal.blueprints.duties.models import ContactRule, DutyLog
from portal.blueprints.points import services as svc
from portal.blueprints.points.models import Review, ReviewSettings
from portal.clock import local_to_utc
from portal.errors import ServiceError
from portal.extensions import db
from tests.conftest import load_user
from tests.points.conftest import item, post_of

Q3 = (date(2026, 7, 1), date(2026, 10, 1))
NOW = datetime(2026, 11, 16, 2, 0)


def local(y, m, d, h=10) -> datetime:
    """A local (Asia/Shanghai) wall-clock time as the naive UTC the database stores."""
    return local_to_utc(datetime(y, m, d, h))


@pytest.fixture
def data(world, make_user, make_household, new_request):
    """The data set. Returns the people and what each is expected to score."""
    w = world
    town = w.town
    for rule in db.session.scalars(select(ContactRule).where(ContactRule.town_id == town.id)):
        rule.active = False
    db.session.add_all([
        ContactRule(town_id=town.id, category="ordinary", method="any", period="month"),
        ContactRule(town_id=town.id, category="ordinary", method="visit", period="quarter"),
        ContactRule(town_id=town.id, category="special", method="visit", period="month"),
    ])
    a = w.neighbor_chief  # 邻长 of hood1
    b = make_user("邻长乙", role="neighbor_chief", region=w.hood1b)
    d = make_user("邻长丁", role="neighbor_chief", region=w.hood1b)  # from 15 September
    c = make_user("邻长丙", role="neighbor_chief", region=w.hood1)  # left on 1 June
    for user, started, ended in ((a, local(2025, 1, 1), None), (b, local(2025, 1, 1), None),
                                 (d, local(2026, 9, 15), None),
                                 (c, local(2025, 1, 1), local(2026, 6, 1))):
        post = post_of(user, "neighbor_chief")
        post.started_at, post.ended_at = started, ended

    h_quarter = make_household(w.hood1, head_name="季访户")
    h_void = make_household(w.hood1, head_name="作废户")
    h_mid = make_household(w.hood1b, head_name="八月户")
    h_late = make_household(w.hood1b, head_name="十月户")
    h_mid.created_at = local(2026, 8, 15)
    h_late.created_at = local(2026, 10, 15)
    duty = item(town, "duty").id

    def log(household, at, method="phone", by=a, voided=False):
        db.session.add(DutyLog(household_id=household.id,
                               neighborhood_id=household.neighborhood_id, user_id=by.id,
                               duty_item_id=duty, method=method, occurred_at=at,
                               form_token=str(uuid.uuid4()),
                               voided_at=at + timedelta(hours=1) if voided else None))

    # hood1 (A): 4 households, 2 on time
    log(w.hh1, local(2026, 7, 3), "visit")       # special: visits in July and August,
    log(w.hh1, local(2026, 8, 3), "visit")       # only a call in September → late
    log(w.hh1, local(2026, 9, 3), "phone")
    log(w.hh1x, local(2026, 7, 10))              # a call every month → on time
    log(w.hh1x, local(2026, 8, 10), "wechat", by=w.group_chief)  # anyone's contact counts
    log(w.hh1x, local(2026, 9, 30, 23))          # 23:00 on 30 Sep local is still September
    log(h_quarter, local(2026, 8, 20), "visit")  # one visit in the quarter → on time
    log(h_void, local(2026, 7, 5))               # August's visit was voided → late
    log(h_void, local(2026, 8, 5), "visit", voided=True)
    log(h_void, local(2026, 9, 5))
    log(h_void, local(2026, 10, 1, 0))         # 1 October local: the next quarter
    # hood1b (B, D): hh1b nothing → late; h_mid joined on 15 Aug: only September is asked,
    # the quarter's visit rule began before it existed → on time; h_late not yet there
    log(h_mid, local(2026, 9, 2), by=b)
    db.session.commit()

    def request(household, at, **state):
        req = new_request(household, at=at)
        for k, v in state.items():
            setattr(req, k, v)
        db.session.commit()
        return req

    # hood1: 3 requests in the period (2 answered in time, 2 closed of which 1 at 邻,
    # 2 rated of which 1 satisfied); one of June and one of October do not count
    request(w.hh1, local(2026, 7, 5), status="closed", closed_level=0, answer="已修好",
            closed_at=local(2026, 7, 5, 12), rating="satisfied")
    request(w.hh1x, local(2026, 8, 1), status="closed", missed=1, level=1, closed_level=1,
            answer="组里处理", closed_at=local(2026, 8, 3), rating="unsatisfied")
    request(w.hh1x, local(2026, 9, 10), status="working")
    request(w.hh1, local(2026, 6, 30), status="working")
    request(w.hh1, local(2026, 10, 2), status="working")
    # hood1b: one request, answered in time, closed at 邻, rated 基本满意
    request(w.hh1b, local(2026, 9, 20), status="closed", closed_level=0, answer="好了",
            closed_at=local(2026, 9, 20, 14), rating="basic")

    # breaches of A: August counts; October is outside; September's was withdrawn
    from portal.scope import Scope

    gc = Scope.for_user(load_user(w.group_chief.id))
    post_a = post_of(a, "neighbor_chief")
    svc.record_breach(w.group_chief, gc, post_a, item(town, "negative").id, date(2026, 8, 8),
                      "入户时态度恶劣，住户投诉", today=date(2026, 11, 16))
    svc.record_breach(w.group_chief, gc, post_a, item(town, "negative").id, date(2026, 10, 8),
                      "十月的一次，不在本期", today=date(2026, 11, 16))
    withdrawn = svc.record_breach(w.group_chief, gc, post_a, item(town, "negative").id,
                                  date(2026, 9, 8), "记错了人", today=date(2026, 11, 16))
    db.session.commit()
    staff = Scope.for_user(load_user(w.village_staff.id))
    svc.withdraw_breach(w.village_staff, staff, withdrawn, "核实后撤销", now=NOW)
    # points: a 表彰 of 20 in July counts, one in October does not; the August breach -10
    svc.award(a.id, "commendation", "commendation", 1, at=local(2026, 7, 10),
              path=w.hood1.path)
    svc.award(a.id, "commendation", "commendation", 2, at=local(2026, 10, 10),
              path=w.hood1.path)
    db.session.commit()
    return {"a": a, "b": b, "c": c, "d": d}


def by_user(path):
    return {m.user_id: m for m in svc.review_metrics(path, *Q3, now=NOW)}


def test_every_figure_of_the_hand_built_set(world, data):
    people = by_user(world.village1.path)
    a, b, d = people[data["a"].id], people[data["b"].id], people[data["d"].id]
    assert data["c"].id not in people  # left before the period
    assert (a.households, a.contacted_on_time) == (4, 2)
    assert (a.requests, a.requests_on_time, a.requests_closed, a.requests_at_neighborhood,
            a.rated, a.satisfied) == (3, 2, 2, 1, 2, 1)
    assert (a.breaches, a.points) == (1, 10)
    assert a.neighborhoods == ["邻11"]
    for m in (b, d):  # both 邻长 of hood1b in the period get its figures
        assert (m.households, m.contacted_on_time) == (2, 1)
        assert (m.requests, m.requests_on_time, m.requests_closed, m.requests_at_neighborhood,
                m.rated, m.satisfied) == (1, 1, 1, 1, 1, 1)
        assert (m.breaches, m.points) == (0, 0)
    assert a.contact_share == pytest.approx(0.5)
    assert a.on_time_share == pytest.approx(2 / 3)
    assert a.neighborhood_share == pytest.approx(0.5)
    assert a.satisfaction_share == pytest.approx(0.5)


def test_score_and_result(world, data):
    people = by_user(world.village1.path)
    a, b = people[data["a"].id], people[data["b"].id]
    # 0.5×30 + ⅔×20 + 0.5×10 + 0.5×20 + 20 (好) − 10 (one breach) = 53.3
    assert svc.score_of(a, "A") == 53
    # everything in full: 30 + 20 + 10 + 20, minus nothing, + 15 (较好) but ½ contacted: 80
    assert svc.score_of(b, "B") == 80
    settings = svc.review_settings(world.town.id)
    assert svc.result_of(53, 1, settings) == "incompetent"
    assert svc.result_of(80, 0, settings) == "competent"
    assert svc.result_of(95, 0, settings) == "excellent"
    assert svc.result_of(95, 1, settings) == "competent"  # a breach bars 优秀
    assert svc.result_of(60, 0, settings) == "basic"


def test_nothing_to_measure_counts_in_full(world, make_user):
    chief = make_user("新邻长", role="neighbor_chief", region=world.hood2b)
    post_of(chief, "neighbor_chief").started_at = local(2026, 1, 1)
    db.session.commit()
    m = by_user(world.village2.path)[chief.id]
    assert m.on_time_share is None and m.satisfaction_share is None
    assert (m.households, m.requests) == (1, 0)  # 丙2 was never contacted
    assert svc.score_of(m, "D") == 0 + 20 + 10 + 20 + 0
    assert svc.score_of(m, "A") - svc.score_of(m, "D") == 20


def test_grading_keeps_the_figures_and_follows_the_thresholds(world, data):
    from portal.scope import Scope

    gc = Scope.for_user(load_user(world.group_chief.id))
    review = svc.save_review(world.group_chief, gc, data["b"].id, *Q3, "A", "工作扎实", now=NOW)
    db.session.commit()
    # 15 + 20 + 10 + 20 + 20 = 85 → 称职 under the default thresholds (90/75/60)
    assert (review.score, review.result, review.households, review.contacted_on_time) == (
        85, "competent", 2, 1)
    assert review.path == world.hood1b.path
    staff = Scope.for_user(load_user(world.town_staff.id))
    svc.save_review_settings(world.town_staff, world.town, {
        "excellent_min": 85, "competent_min": 70, "basic_min": 50,
        "excellent_max_breaches": 0})
    again = svc.save_review(world.village_staff, staff, data["b"].id, *Q3, "A", "复核", now=NOW)
    db.session.commit()
    assert again.id == review.id and again.result == "excellent"
    assert [r.user_id for r in svc.excellent(world.village1.path, *Q3)] == [data["b"].id]
    assert svc.excellent(world.village2.path, *Q3) == []
    assert db.session.scalar(select(ReviewSettings.excellent_min)) == 85


def test_grading_refusals(world, data):
    from portal.scope import Scope

    gc = Scope.for_user(load_user(world.group_chief.id))
    with pytest.raises(ServiceError, match="评议期结束后"):
        svc.save_review(world.group_chief, gc, data["a"].id, date(2026, 10, 1),
                        date(2027, 1, 1), "A", "", now=NOW)
    with pytest.raises(ServiceError, match="评议等次"):
        svc.save_review(world.group_chief, gc, data["a"].id, *Q3, "E", "", now=NOW)
    chief = Scope.for_user(load_user(world.neighbor_chief.id))
    with pytest.raises(PermissionError):
        svc.save_review(world.neighbor_chief, chief, data["b"].id, *Q3, "A", "", now=NOW)
    other = Scope.for_user(load_user(world.neighbor_chief2.id))
    with pytest.raises(PermissionError):
        svc.save_review(world.neighbor_chief2, other, data["a"].id, *Q3, "A", "", now=NOW)
    with pytest.raises(ServiceError, match="不是这里的邻长"):  # left before the period
        svc.save_review(world.group_chief, gc, data["c"].id, *Q3, "A", "", now=NOW)
    assert db.session.scalar(select(Review.id)) is None


@pytest.mark.parametrize("values, field", [
    ({"excellent_min": 70, "competent_min": 75, "basic_min": 60}, "competent_min"),
    ({"excellent_min": 101, "competent_min": 75, "basic_min": 60}, "excellent_min"),
    ({"excellent_min": 90, "competent_min": 75, "basic_min": "六十"}, "basic_min"),
])
def test_threshold_validation(world, values, field):
    with pytest.raises(ServiceError) as e:
        svc.save_review_settings(world.town_staff, world.town,
                                 dict(values, excellent_max_breaches=0))
    assert e.value.field == field


@pytest.mark.parametrize("label, bounds", [
    ("2026Q3", (date(2026, 7, 1), date(2026, 10, 1))),
    ("2026q4", (date(2026, 10, 1), date(2027, 1, 1))),
    ("2026", (date(2026, 1, 1), date(2027, 1, 1))),
])
def test_periods(label, bounds):
    assert svc.period_bounds(label) == bounds
    assert svc.quarter_of(date(2026, 11, 16)) == "2026Q4"
    assert svc.previous_quarter(date(2026, 1, 5)) == "2025Q4"


@pytest.mark.parametrize("label", ["2026Q5", "Q3", "二〇二六", ""])
def test_bad_periods(label):
    with pytest.raises(ServiceError):
        svc.period_bounds(label)


def test_five_queries_whatever_the_size(world, data, count_queries):
    path = world.town.path
    with count_queries() as n:
        svc.review_metrics(path, *Q3, now=NOW)
    assert n.count <= 5, [s[:60] for s in n.statements]


def test_nobody_grades_themself(world, data):
    """A village cadre who is also a 邻长 may grade the others, not themself."""
    from portal.blueprints.regions.models import Post
    from portal.scope import Scope

    staff = world.village_staff
    db.session.add(Post(user_id=staff.id, region_id=world.hood1b.id, role="neighbor_chief",
                        started_at=local(2025, 1, 1)))
    db.session.commit()
    scope = Scope.for_user(load_user(staff.id, refresh=True))
    with pytest.raises(PermissionError, match="不能评议自己"):
        svc.save_review(staff, scope, staff.id, *Q3, "A", "", now=NOW)
    assert svc.save_review(staff, scope, data["b"].id, *Q3, "B", "", now=NOW).result
