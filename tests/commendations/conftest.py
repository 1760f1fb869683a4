"""Fixtures of the 好邻 and 四个一 tests."""

import pytest

from portal import batch


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Caches of this test's own (posters and card parts are kept in the instance folder
    otherwise); any batch print the test started is finished before the folder goes."""
    folder = tmp_path / "cache"

    def cache_dir(kind: str):
        (folder / kind).mkdir(parents=True, exist_ok=True)
        return folder / kind

    monkeypatch.setattr(batch, "cache_dir", cache_dir)
    yield folder
    batch.wait_all(60)
