"""Long print jobs (a campaign's posters, a village's contact cards): a document made of parts,
each rendered once and cached on disk, by a background thread of this process while the page
shows a progress bar; the bar counts the parts already in the cache, so it needs no job table and
survives a reload. When every part is there, they are merged into one PDF for the download.

A part is named by a hash of everything it prints (``cache_path``), so a changed record renders
again and an unchanged one is reused. A server restart mid-way leaves the parts done so far; the
page offers to go on.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

log = logging.getLogger(__name__)


@dataclass
class Part:
    path: Path
    render: Callable[[], bytes]


def cache_dir(kind: str) -> Path:
    """<instance>/cache/<kind>/, made when missing."""
    folder = Path(current_app.instance_path) / "cache" / kind
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def digest(*parts) -> str:
    """A short hash of everything a render depends on (reprs, in order)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else repr(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def cached(path: Path, render: Callable[[], bytes]) -> tuple[bytes, bool]:
    """(the file's bytes, rendered now?): ``render`` only when ``path`` is not there yet. The
    file is written atomically: a reader never sees half of it."""
    if path.exists():
        return path.read_bytes(), False
    data = render()
    tmp = path.with_name(f".{path.name}.{threading.get_ident()}")
    tmp.write_bytes(data)
    tmp.replace(path)
    return data, True


def done(parts: list[Part]) -> int:
    return sum(p.path.exists() for p in parts)


_jobs: dict[str, threading.Thread] = {}
_lock = threading.Lock()


def running(key: str) -> bool:
    job = _jobs.get(key)
    return job is not None and job.is_alive()


def start(key: str, parts: list[Part]) -> bool:
    """Render the parts not cached yet in a background thread (one per ``key`` at a time: a
    second start while it runs does nothing and returns False)."""
    app = current_app._get_current_object()
    todo = [p for p in parts if not p.path.exists()]
    with _lock:
        if running(key) or not todo:
            return False
        job = threading.Thread(target=_run, args=(app, todo), daemon=True,
                               name=f"batch-{key[:24]}")
        _jobs[key] = job
        job.start()
    return True


def _run(app, parts: list[Part]) -> None:
    with app.app_context():
        for part in parts:
            try:
                cached(part.path, part.render)
            except Exception:  # one bad part must not stop the rest; the page shows the gap
                log.exception("batch part %s failed", part.path.name)


def wait_all(timeout: float | None = None) -> None:
    """Block until every job started is done (tests)."""
    for job in list(_jobs.values()):
        job.join(timeout)


def merge_pdfs(parts: list[bytes]) -> bytes:
    """The PDFs one after another in one PDF (pages copied as they are, with pdfium)."""
    import pypdfium2 as pdfium

    merged = pdfium.PdfDocument.new()
    try:
        for part in parts:
            source = pdfium.PdfDocument(part)
            try:
                merged.import_pages(source)
            finally:
                source.close()
        out = io.BytesIO()
        merged.save(out)
    finally:
        merged.close()
    return out.getvalue()


def merged(parts: list[Part]) -> bytes:
    return merge_pdfs([p.path.read_bytes() for p in parts])
