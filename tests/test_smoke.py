def test_neighbor_chief_lands_on_their_households(world, login_as):
    c = login_as(world.neighbor_chief)
    r = c.get("/", follow_redirects=True)
    assert r.status_code == 200
    html = r.data.decode()
    assert "我的联系户" in html
    assert f'id="hh-{world.hh1.id}"' in html
    assert f'id="hh-{world.hh2.id}"' not in html
