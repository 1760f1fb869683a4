"""好邻 posters: an A3 print PDF (two designs) and the same poster as a PNG sized for a WeChat
article, cached on disk until the nomination, the campaign or the design changes.

The PDF goes through portal.pdf (fonts embedded as subsets, data: URLs only); the photo is
cropped to the frame's 3:4 with Pillow and inlined; the QR code (segno) points at the honour-wall
entry. The PNG is the PDF's page rasterised with pdfium (pypdfium2), so both always agree.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from flask import current_app, render_template
from markupsafe import Markup

from portal.blueprints.commendations.models import POSTER_DESIGNS, STAT_LABELS
from portal.pdf import FONTS, photo_data_url, qr_data_url, render_pdf

#: Bump when the template changes: cached renders of the old one are not reused.
TEMPLATE_VERSION = 1
#: Width of the PNG for a 公众号 article (pixels).
PNG_WIDTH = 1080
PHOTO_SIZE = (900, 1200)  # 3:4, the photo frame


@dataclass
class PosterData:
    """What a poster shows (the view gathers it; nothing here reads the database)."""

    name: str
    honour: str
    series: str
    where: str
    deeds: str
    stats: dict
    campaign: str
    issuer: str
    link: str
    photo: bytes | None = None


def poster_html(data: PosterData, design: str) -> str:
    if design not in POSTER_DESIGNS:
        raise ValueError(design)
    stats = [(label, data.stats.get(key, 0)) for key, label in STAT_LABELS.items()]
    return render_template(
        "commendations/print_poster.html", design=design, fonts=Markup(FONTS),
        name=data.name, honour=data.honour, series=data.series, where=data.where,
        deeds=data.deeds, stats=stats, campaign=data.campaign, issuer=data.issuer,
        qr=qr_data_url(data.link),
        photo=photo_data_url(data.photo, PHOTO_SIZE) if data.photo else None)


def cache_key(data: PosterData, design: str) -> str:
    """Changes whenever anything printed changes (or the template does)."""
    h = hashlib.sha256()
    for part in (TEMPLATE_VERSION, design, data.name, data.honour, data.series, data.where,
                 data.deeds, sorted(data.stats.items()), data.campaign, data.issuer,
                 data.link):
        h.update(repr(part).encode())
        h.update(b"\0")
    h.update(hashlib.sha256(data.photo or b"").digest())
    return h.hexdigest()[:32]


def series_of(town_name: str) -> str:
    """The poster series' title, 《江背“好邻” 幸福同行》 for 江背镇."""
    short = town_name
    for suffix in ("街道", "镇", "乡"):
        if short.endswith(suffix) and len(short) > len(suffix) + 1:
            short = short[: -len(suffix)]
            break
    return f"《{short}“好邻” 幸福同行》"


def issuer_of(level: str, name: str) -> str:
    """Who commends: the town's government (街道办事处) or the village's committee."""
    if level == "town":
        return name + ("办事处" if name.endswith("街道") else "人民政府")
    return name + ("村民委员会" if name.endswith("村") else "居民委员会")


def _cache_dir() -> Path:
    folder = Path(current_app.instance_path) / "cache" / "posters"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _pdf_path(data: PosterData, design: str) -> Path:
    return _cache_dir() / f"{cache_key(data, design)}.pdf"


def is_cached(data: PosterData, design: str) -> bool:
    return _pdf_path(data, design).exists()


def poster_pdf(data: PosterData, design: str) -> tuple[bytes, bool]:
    """(PDF, rendered now?): a cached render is reused until anything printed changes."""
    path = _pdf_path(data, design)
    if path.exists():
        return path.read_bytes(), False
    pdf = render_pdf(poster_html(data, design))
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pdf)
    tmp.replace(path)  # atomic: a reader never sees half a file
    return pdf, True


def poster_png(data: PosterData, design: str) -> bytes:
    """The poster as a PNG PNG_WIDTH pixels wide (A3's proportions), cached like the PDF."""
    path = _cache_dir() / f"{cache_key(data, design)}-{PNG_WIDTH}.png"
    if path.exists():
        return path.read_bytes()
    import pypdfium2 as pdfium

    pdf, _ = poster_pdf(data, design)
    document = pdfium.PdfDocument(pdf)
    try:
        page = document[0]
        scale = PNG_WIDTH / page.get_width()
        image = page.render(scale=scale).to_pil()
    finally:
        document.close()
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(out.getvalue())
    tmp.replace(path)
    return out.getvalue()


# -- a campaign's batch print --------------------------------------------------------------------
def merge_pdfs(parts: list[bytes]) -> bytes:
    """The posters one after another in one PDF (pages copied as they are)."""
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


_jobs: dict[str, threading.Thread] = {}
_jobs_lock = threading.Lock()
log = logging.getLogger(__name__)


def batch_running(key: str) -> bool:
    job = _jobs.get(key)
    return job is not None and job.is_alive()


def start_batch(app, key: str, posters: list[tuple[PosterData, str]]) -> bool:
    """Render the posters in a background thread of this process, one thread per ``key`` (a
    campaign's selection of posters) at a time. Progress is read back from the cache: how many
    of the selection's posters are there. False when that batch is already running."""
    with _jobs_lock:
        if batch_running(key):
            return False
        job = threading.Thread(target=_render_all, args=(app, posters), daemon=True,
                               name=f"posters-{key[:20]}")
        _jobs[key] = job
        job.start()
    return True


def _render_all(app, posters: list[tuple[PosterData, str]]) -> None:
    with app.app_context():
        for data, design in posters:
            try:
                poster_pdf(data, design)
            except Exception:  # one bad poster must not stop the rest; the page shows the gap
                log.exception("poster of %s (%s) failed", data.name, design)


def wait_for_batches(timeout: float | None = None) -> None:
    """Block until every batch started is done (tests)."""
    for job in list(_jobs.values()):
        job.join(timeout)
