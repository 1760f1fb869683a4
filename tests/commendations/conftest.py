"""Fixtures of the 好邻 tests."""

import pytest

from portal.blueprints.commendations import posters


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """A poster cache of this test's own (renders are kept in the instance folder otherwise);
    any batch print the test started is finished before the folder goes."""
    folder = tmp_path / "posters"
    folder.mkdir()
    monkeypatch.setattr(posters, "_cache_dir", lambda: folder)
    yield folder
    posters.wait_for_batches(60)
