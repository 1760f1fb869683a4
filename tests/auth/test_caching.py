"""Pages carry personal data (PIPL): shared caches must not keep them."""


def test_pages_with_personal_data_are_not_cached_by_proxies(world, login_as):
    c = login_as(world.village_staff)
    page = c.get(f"/duties/households/{world.hh1.id}")
    assert page.headers["Cache-Control"] == "private, no-cache"
    partial = c.get(f"/duties/households/{world.hh1.id}/row",
                    headers={"HX-Request": "true", "HX-Target": f"hh-{world.hh1.id}"})
    assert partial.headers["Cache-Control"] == "no-store"
