"""DESIGN §6 budgets, measured rather than timed: the 邻长's pages' compressed weight, caching of
static files, and the number of SQL statements per page.

The measured figures are written to test-output/<test>/budget.txt for the closing note."""

import gzip
import hashlib
import json
import re
import uuid
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from portal.blueprints.duties import services as duty_svc
from portal.blueprints.duties.models import ChecklistItem
from portal.blueprints.regions import services as region_svc
from portal.blueprints.regions.models import Household
from portal.clock import utcnow
from portal.extensions import db

KB = 1024
GZIP = {"Accept-Encoding": "gzip"}
STATIC = Path(__file__).parent.parent / "portal" / "static"
HTMX = "vendor/htmx.min.js"
MAX_QUERIES = 8

SURNAMES = "胡杨刘陈周李王张黄赵吴彭罗谢邓"
GIVEN = ["建国", "秀英", "新林", "桂兰", "志强", "玉梅", "国平", "冬梅", "海波", "春华",
         "德胜", "凤英", "明亮", "小红", "长生"]
NOTES = ["身体还好，叮嘱注意用电安全。", "反映门前路灯不亮，已上报组长。", "宣传医保缴费政策。",
         "孩子学习情况正常，老人腿脚不便，下次带药。", ""]


class Tags(HTMLParser):
    """The tags of a page that cost a download: scripts, stylesheets, images, fonts."""

    def __init__(self, html: str):
        super().__init__()
        self.scripts: list[dict] = []   # attrs, plus "inline" text for inline scripts
        self.links: list[dict] = []
        self.imgs: list[dict] = []
        self._in_script: dict | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            attrs["inline"] = ""
            self.scripts.append(attrs)
            self._in_script = attrs
        elif tag == "link":
            self.links.append(attrs)
        elif tag in ("img", "picture", "svg", "image"):
            self.imgs.append(attrs)

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None

    def handle_data(self, data):
        if self._in_script is not None:
            self._in_script["inline"] += data


def fetch(client, url: str, headers: dict | None = None):
    """GET ``url`` and read the whole body (static files come as streams holding the file
    open until the response is closed)."""
    r = client.get(url, headers=headers or {})
    r.get_data()
    r.close()
    return r


def wire_size(response) -> int:
    """Bytes on the wire: the body as sent (compressed when the server compressed it)."""
    return len(response.get_data())


def gzip_size(text: str) -> int:
    return len(gzip.compress(text.encode(), compresslevel=6))


def html_of(response) -> str:
    data = response.get_data()
    if response.headers.get("Content-Encoding") == "gzip":
        data = gzip.decompress(data)
    return data.decode()


def static_name(url: str) -> str:
    return urlsplit(url).path.removeprefix("/static/")


def report(output_dir, name: str, figures: dict) -> None:
    (output_dir / f"{name}.json").write_text(json.dumps(figures, ensure_ascii=False, indent=1))
    print(name, json.dumps(figures, ensure_ascii=False))


# -- a realistic 邻 -----------------------------------------------------------------------------
@pytest.fixture
def full(world, make_region, make_user, make_household):
    """The world, with the 邻长's 邻 at the top of the 5–15 range (15 households with real-length
    names, addresses, tags and three months of logs), a second group of three 邻 with their own
    邻长 and households (so the dashboards have rows), and staff edits in the audit table."""
    rng_names = iter(f"{s}{g}" for g in GIVEN for s in SURNAMES)
    tags_cycle = [("独居老人",), (), ("留守儿童",), (), ("低保户", "残疾人"), (), ()]
    hood = world.hood1
    for i in range(13):
        make_household(hood, head_name=next(rng_names), tags=tags_cycle[i % len(tags_cycle)],
                       phone=f"1391234{i:04d}", address=f"特立村杨家井组{i + 3}号（老屋场东头）")
    group_b = make_region("枫树湾组", world.area1)
    for k in range(3):
        h = make_region(f"枫树湾{'一二三'[k]}邻", group_b)
        make_user(f"{next(rng_names)}", f"1360000000{k}", role="neighbor_chief", region=h)
        for _ in range(5):
            make_household(h, head_name=next(rng_names), address="枫树湾组12号")
    # logs: most households contacted once or more in the last three months
    item = db.session.scalar(select(ChecklistItem).where(
        ChecklistItem.town_id == world.town.id, ChecklistItem.title == "民情联络员"))
    now = utcnow()
    def load():
        return list(db.session.scalars(
            select(Household).options(joinedload(Household.neighborhood),
                                      selectinload(Household.tags))
            .where(Household.neighborhood_id == hood.id).order_by(Household.id)))

    households = load()
    for n, household in enumerate(households):
        for k in range(n % 4):
            duty_svc.log_duty(world.neighbor_chief, household, duty_item_id=item.id,
                              method=("visit", "phone", "wechat")[k % 3],
                              occurred_at=now - timedelta(days=80 - 25 * k - n),
                              note=NOTES[(n + k) % len(NOTES)], photo=None,
                              token=duty_svc.new_form_token())
    db.session.commit()
    # staff edits (the audit page joins their author)
    households = load()
    for household in households[:5]:
        region_svc.update_household(world.village_staff, household, {
            "head_name": household.head_name, "address": household.address + "（新）",
            "phone": household.phone, "member_count": household.member_count},
            [t.id for t in household.tags])
    db.session.commit()
    households = load()
    assert len(households) == 15
    busiest = max(households, key=lambda h: h.last_contact_at or now)
    return SimpleNamespace(world=world, households=households, group_b=group_b,
                           busiest=busiest, requests=_requests(world, households, busiest, now))


REQUEST_TEXTS = ["山塘输水洞堵塞，蓄水困难，春耕马上要灌溉，请帮忙看看。",
                 "楼道灯坏了好几天，老人晚上上下楼看不见，怕摔跤。",
                 "隔壁装修噪音很大，中午和晚上也在施工，协商不了。",
                 "想问一下城乡居民医保今年的缴费标准和截止时间。"]


def _requests(world, households, busiest, now):
    """Residents' requests in the 邻长's 邻 (the home's banner, the queue, the household page):
    three waiting, one worked on by a volunteer who reported it done, a dispute with a
    mediation, and a few closed ones on the busiest household."""
    from portal.blueprints.requests import services as req_svc
    from portal.blueprints.requests.models import RequestCategory
    from portal.scope import Scope

    chief = Scope.for_user(_with_posts(world.neighbor_chief))
    volunteer = Scope.for_user(_with_posts(world.volunteer))
    cats = {c.name: c.id for c in db.session.scalars(select(RequestCategory).where(
        RequestCategory.town_id == world.town.id))}
    ids = []
    for i, household in enumerate([busiest] * 4 + households[:6]):
        data = {"category_id": cats["邻里纠纷" if i == 2 else "生活求助"],
                "description": REQUEST_TEXTS[i % len(REQUEST_TEXTS)], "contact_name": "住户",
                "contact_phone": f"1381234{i:04d}", "contact_note": "晚上在家"}
        req, _ = req_svc.submit(household, data, source="resident", photo=None,
                                token=str(uuid.uuid4()), now=now - timedelta(hours=3, minutes=i))
        ids.append(req.id)
    db.session.commit()
    steps = [
        (0, lambda r: req_svc.acknowledge(world.neighbor_chief, chief, r, now, "马上去看。")),
        (1, lambda r: req_svc.offer_to_helpers(world.neighbor_chief, chief, r, now)),
        (1, lambda r: req_svc.claim(world.volunteer, volunteer, r, now)),
        (1, lambda r: req_svc.helper_done(world.volunteer, r, now, "已经上门换好灯泡了。")),
        (2, lambda r: req_svc.record_mediation(world.neighbor_chief, chief, r, {
            "parties": "两家住户", "mediators": "邻长", "outcome": "not_agreed",
            "note": "双方各执一词，约定下周再谈。"}, now)),
        (3, lambda r: req_svc.acknowledge(world.neighbor_chief, chief, r, now)),
        (3, lambda r: req_svc.close(world.neighbor_chief, chief, r, now,
                                    "已电话告知缴费标准和截止时间。")),
    ]
    for index, step in steps:
        step(req_svc.load(ids[index]))
        db.session.commit()
    return ids


def _with_posts(user):
    from portal.blueprints.regions.models import Post

    return db.session.execute(
        select(type(user)).options(selectinload(type(user).posts).joinedload(Post.region))
        .where(type(user).id == user.id)).scalar_one()


# -- page weight --------------------------------------------------------------------------------
def _weigh_page(client, url: str) -> dict:
    """Compressed sizes of a page and of everything it loads; asserts the §6 rules on the way."""
    r = client.get(url, headers=GZIP)
    assert r.status_code == 200, url
    assert r.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in r.headers.get("Vary", "")
    html = html_of(r)
    tags = Tags(html)
    figures = {"html": wire_size(r), "html_raw": len(html.encode()), "css": 0, "own_js": 0,
               "htmx": 0}

    # no images, no web fonts
    assert tags.imgs == [], tags.imgs
    assert not re.search(r"url\(|@font-face|\.woff2?|\.ttf|\.otf|fonts\.googleapis", html)
    for link in tags.links:
        assert link.get("rel") == "stylesheet", link  # no font preloads, no icons to fetch
        assert "font" not in link.get("href", "")

    for link in tags.links:
        css = fetch(client, link["href"], GZIP)
        assert css.status_code == 200
        text = gzip.decompress(css.get_data()).decode() \
            if css.headers.get("Content-Encoding") == "gzip" else css.get_data(as_text=True)
        assert "@font-face" not in text and "url(" not in text, "fonts or images in the CSS"
        figures["css"] += wire_size(css)

    assert tags.scripts, "htmx is loaded"
    for script in tags.scripts:
        src = script.get("src")
        if src is None:  # inline script: ours
            figures["own_js"] += gzip_size(script["inline"])
            continue
        js = fetch(client, src, GZIP)
        assert js.status_code == 200
        if static_name(src) == HTMX:
            figures["htmx"] += wire_size(js)
        else:
            figures["own_js"] += wire_size(js)
    # handlers in attributes (onclick=…) would be our JavaScript too
    assert not re.search(r"\son[a-z]+=", html)
    figures["total"] = figures["html"] + figures["css"] + figures["own_js"] + figures["htmx"]
    return figures


def _assert_page_budget(figures: dict) -> None:
    assert figures["html"] <= 8 * KB, figures
    assert figures["css"] <= 6 * KB, figures
    assert figures["own_js"] <= 2 * KB, figures
    assert figures["total"] <= 30 * KB, figures


def test_neighbor_chief_home_weight(full, login_as, output_dir):
    c = login_as(full.world.neighbor_chief)
    figures = _weigh_page(c, "/duties/")
    html = html_of(c.get("/duties/"))
    assert html.count('class="hh ') == 15  # all the 邻's households are on the page
    assert "待响应诉求 7 件" in html  # the banner (full.requests: 7 of them still waiting)
    # we ship no JavaScript of our own yet: every script is htmx
    scripts = Tags(html).scripts
    assert [static_name(s["src"]) for s in scripts if s.get("src")] == [HTMX]
    assert all(s.get("src") for s in scripts), "inline script"
    assert figures["htmx"] > 10 * KB  # htmx itself was measured, compressed
    report(output_dir, "home", figures)
    _assert_page_budget(figures)


def test_log_form_weight(full, login_as, output_dir):
    c = login_as(full.world.neighbor_chief)
    h = full.busiest
    page = _weigh_page(c, f"/duties/households/{h.id}/log")
    report(output_dir, "log_page", page)
    _assert_page_budget(page)

    partials = {}
    for name, url in (("log_form", f"/duties/households/{h.id}/log"),
                      ("row", f"/duties/households/{h.id}/row")):
        r = c.get(url, headers=GZIP | {"HX-Request": "true", "HX-Target": f"hh-{h.id}"})
        assert r.status_code == 200
        text = html_of(r)
        assert "<html" not in text and f'<li id="hh-{h.id}"' in text
        partials[name] = wire_size(r)
        partials[name + "_raw"] = len(text.encode())
        assert "<img" not in text
    report(output_dir, "partials", partials)
    assert partials["log_form"] <= 4 * KB, partials
    assert partials["row"] <= 4 * KB, partials


def test_static_files_are_hashed_and_cached_immutably(full, login_as):
    c = login_as(full.world.neighbor_chief)
    tags = Tags(html_of(c.get("/duties/")))
    urls = [link["href"] for link in tags.links] + [s["src"] for s in tags.scripts]
    assert len(urls) >= 2
    for url in urls:
        parts = urlsplit(url)
        version = parse_qs(parts.query).get("v", [""])[0]
        name = static_name(url)
        # the version is the content's hash, so a changed file gets a new URL
        assert version == hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:10], url
        r = fetch(c, url, GZIP)
        assert r.status_code == 200
        cache = r.headers["Cache-Control"]
        assert "immutable" in cache and "max-age=31536000" in cache, (url, cache)
        # without the version the file may change under the same URL: not immutable
        plain = fetch(c, parts.path)
        assert "immutable" not in plain.headers.get("Cache-Control", "")
    # the page itself is fetched again on every load
    page = c.get("/duties/")
    assert "immutable" not in page.headers.get("Cache-Control", "")


def test_responses_are_gzipped_when_asked(full, login_as):
    c = login_as(full.world.neighbor_chief)
    for url in ("/duties/", "/static/app.css", f"/static/{HTMX}"):
        r = fetch(c, url, GZIP)
        assert r.headers.get("Content-Encoding") == "gzip", url
        plain = fetch(c, url)
        assert "Content-Encoding" not in plain.headers, url
        assert gzip.decompress(r.get_data()) == plain.get_data() or url == "/duties/"
        assert wire_size(r) < wire_size(plain) / 2, url


# -- SQL statements per page --------------------------------------------------------------------
def _count(count_queries, client, url, method="GET", **kwargs):
    with count_queries() as n:
        r = client.open(url, method=method, **kwargs)
    return r, n


def _pages(full) -> list[tuple[str, str, str, dict]]:
    """(name, who, url, headers) for every main page."""
    w = full.world
    h = full.busiest
    hx = {"HX-Request": "true", "HX-Target": f"hh-{h.id}"}
    return [
        ("邻长 home", "neighbor_chief", "/duties/", {}),
        ("log form page", "neighbor_chief", f"/duties/households/{h.id}/log", {}),
        ("log form partial", "neighbor_chief", f"/duties/households/{h.id}/log", hx),
        ("row partial", "neighbor_chief", f"/duties/households/{h.id}/row", hx),
        ("household history", "neighbor_chief", f"/duties/households/{h.id}", {}),
        ("household history (staff)", "village_staff", f"/duties/households/{h.id}", {}),
        ("dashboard town", "town_staff", f"/duties/dashboard?region={w.town.id}", {}),
        ("dashboard village", "town_staff", f"/duties/dashboard?region={w.village1.id}", {}),
        ("dashboard area", "area_chief", f"/duties/dashboard?region={w.area1.id}", {}),
        ("dashboard group", "group_chief", f"/duties/dashboard?region={w.group1.id}", {}),
        ("dashboard group (other)", "area_chief", f"/duties/dashboard?region={full.group_b.id}",
         {}),
        ("dashboard default", "village_staff", "/duties/dashboard", {}),
        ("neighborhood page", "group_chief", f"/duties/neighborhoods/{w.hood1.id}", {}),
        ("checklists", "neighbor_chief", "/duties/checklists", {}),
        ("checklists (town staff)", "town_staff", "/duties/checklists", {}),
        ("regions node 邻", "village_staff", f"/regions/{w.hood1.id}", {}),
        ("regions node 村", "village_staff", f"/regions/{w.village1.id}", {}),
        ("regions node 镇", "town_staff", f"/regions/{w.town.id}", {}),
        ("household edit form", "village_staff", f"/regions/households/{h.id}/edit", {}),
        ("audit", "village_staff", "/regions/audit", {}),
        ("audit (town)", "town_staff", "/regions/audit", {}),
        ("诉求 queue", "neighbor_chief", "/requests/", {}),
        ("诉求 queue (village staff)", "village_staff", "/requests/", {}),
        ("request page", "neighbor_chief", f"/requests/{full.requests[0]}", {}),
        ("request page (helper done)", "neighbor_chief", f"/requests/{full.requests[1]}", {}),
        ("request page (dispute)", "neighbor_chief", f"/requests/{full.requests[2]}", {}),
        ("request page (closed)", "village_staff", f"/requests/{full.requests[3]}", {}),
        ("request page (helper)", "volunteer", f"/requests/{full.requests[1]}", {}),
        ("接单 board", "volunteer", "/requests/board", {}),
        ("接单 board (邻长)", "neighbor_chief", "/requests/board", {}),
    ]


def test_queries_per_page(full, login_as, count_queries, output_dir):
    clients = {}
    counts = {}
    failures = []
    for name, who, url, headers in _pages(full):
        if who not in clients:
            clients[who] = login_as(getattr(full.world, who))
        r, n = _count(count_queries, clients[who], url, headers=headers)
        assert r.status_code == 200, (name, url, r.status_code)
        counts[name] = n.count
        if n.count > MAX_QUERIES:
            failures.append((name, n.count, n.statements))
    report(output_dir, "queries", counts)
    assert not failures, "\n\n".join(
        f"{name}: {count} queries\n" + "\n".join(s.split("\n")[0][:150] for s in statements)
        for name, count, statements in failures)


def _log_form_data(html: str) -> dict:
    data = {"method": "visit", "note": "上门走访，老人身体还好。"}
    for tag in re.findall(r"<input\b([^>]*)>", html):
        attrs = dict(re.findall(r'([\w-]+)(?:="([^"]*)")?', tag))
        name = attrs.get("name")
        if name in ("csrf_token", "token", "occurred_at") or (
                name == "duty_item_id" and "checked" in attrs):
            data[name] = attrs["value"]
    assert {"csrf_token", "token", "occurred_at", "duty_item_id"} <= set(data), data
    return data


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
def test_queries_saving_a_duty_log(full, login_as, count_queries, output_dir, htmx):
    from portal.blueprints.duties.models import DutyLog

    c = login_as(full.world.neighbor_chief)
    h = full.households[0]
    url = f"/duties/households/{h.id}/log"
    headers = {"HX-Request": "true", "HX-Target": f"hh-{h.id}"} if htmx else {}
    data = _log_form_data(html_of(c.get(url, headers=headers)))
    before = db.session.scalar(select(db.func.count()).select_from(DutyLog))
    r, n = _count(count_queries, c, url, method="POST", data=data, headers=headers)
    assert r.status_code == 303, html_of(r)[:500]
    assert db.session.scalar(select(db.func.count()).select_from(DutyLog)) == before + 1
    # and the page the browser is sent to next
    r2, n2 = _count(count_queries, c, r.headers["Location"], headers=headers)
    assert r2.status_code == 200
    report(output_dir, "post", {"post": n.count, "then_get": n2.count})
    assert n.count <= MAX_QUERIES, "\n".join(n.statements)
    assert n2.count <= MAX_QUERIES, "\n".join(n2.statements)


# -- the nav's unread-notices badge (issue 7) ----------------------------------------------------
def test_unread_badge_costs_no_query_and_fits_the_home(full, login_as, count_queries, output_dir):
    """The 通知 badge on every page comes with the user in the login's one query: the 邻长 home
    runs as many statements with three unread notices as with none, and still weighs within
    budget; the notices pages stay within the query budget with the full 邻."""
    from tests.notices.factories import callout, publish

    w = full.world
    c = login_as(w.neighbor_chief)
    _, before = _count(count_queries, c, "/duties/")
    notices = [publish(w.town_staff, w.town, title=f"全镇通知{i}") for i in range(2)]
    publish(w.area_chief, w.area1, title="片里的通知")
    r, after = _count(count_queries, c, "/duties/")
    assert '<b class="badge">3</b>' in html_of(r)
    assert after.count == before.count <= MAX_QUERIES
    figures = _weigh_page(c, "/duties/")
    _assert_page_budget(figures)
    row = callout(w.neighbor_chief, w.hood1,
                  signups=[(f"邻居{i}", f"1391234{i:04d}", 1) for i in range(12)])
    counts = {"home": after.count}
    for name, url in (("notices", "/notices/"), ("notice", f"/notices/{notices[0].id}"),
                      ("callouts", "/notices/callouts"), ("callout", f"/notices/callouts/{row.id}")):
        r, n = _count(count_queries, c, url)
        assert r.status_code == 200, url
        counts[name] = n.count
    staff = login_as(w.town_staff)
    for name, url in (("sent", "/notices/sent"),
                      ("receipts", f"/notices/{notices[0].id}/receipts")):
        r, n = _count(count_queries, staff, url)
        assert r.status_code == 200, url
        counts[name] = n.count
    report(output_dir, "notices_queries", {**counts, "home_html": figures["html"]})
    assert max(counts.values()) <= MAX_QUERIES, counts
