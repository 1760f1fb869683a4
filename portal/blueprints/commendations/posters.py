"""好邻 posters: an A3 print PDF (two designs) and the same poster as a PNG sized for a WeChat
article, cached on disk until the nomination, the campaign or the design changes.

The PDF goes through portal.pdf (fonts embedded as subsets, data: URLs only); the photo is
cropped to the frame's 3:4 with Pillow and inlined; the QR code (segno) points at the honour-wall
entry. The PNG is the PDF's page rasterised with pdfium (pypdfium2), so both always agree.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from flask import render_template
from markupsafe import Markup

from portal import batch
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
    return batch.digest(TEMPLATE_VERSION, design, data.name, data.honour, data.series,
                        data.where, data.deeds, sorted(data.stats.items()), data.campaign,
                        data.issuer, data.link, hashlib.sha256(data.photo or b"").digest())


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
    return batch.cache_dir("posters")


def part(data: PosterData, design: str) -> batch.Part:
    """The poster as a part of a batch print (its cache file and how to render it)."""
    return batch.Part(_cache_dir() / f"{cache_key(data, design)}.pdf",
                      lambda: render_pdf(poster_html(data, design)))


def poster_pdf(data: PosterData, design: str) -> tuple[bytes, bool]:
    """(PDF, rendered now?): a cached render is reused until anything printed changes."""
    p = part(data, design)
    return batch.cached(p.path, p.render)


def poster_png(data: PosterData, design: str) -> bytes:
    """The poster as a PNG PNG_WIDTH pixels wide (A3's proportions), cached like the PDF."""
    return batch.cached(_cache_dir() / f"{cache_key(data, design)}-{PNG_WIDTH}.png",
                        lambda: _rasterise(poster_pdf(data, design)[0]))[0]


def _rasterise(pdf: bytes) -> bytes:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf)
    try:
        page = document[0]
        image = page.render(scale=PNG_WIDTH / page.get_width()).to_pil()
    finally:
        document.close()
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()
