"""The one WeasyPrint helper: HTML (rendered from our templates) to PDF.

* Fonts are the system's Noto CJK (Debian ``fonts-noto-cjk``), found through fontconfig and
  embedded as subsets (HarfBuzz's subsetter, ``libharfbuzz-subset0``, keeps that fast).
* Resources: only ``data:`` URLs are fetched (a QR code or a photo the template inlines). A
  ``file:`` or network URL in the document — say, in text a user typed that somehow reached the
  markup — is refused, so a PDF can never read the server's files or call out.
"""

import base64
import io
from pathlib import Path
from urllib.parse import quote

from flask import Response

#: Font stack for print templates: sans for headings, serif available for body text.
FONTS = '"Noto Sans CJK SC", "Noto Sans SC", sans-serif'
SERIF = '"Noto Serif CJK SC", "Noto Serif SC", serif'


class RefusedURL(ValueError):
    pass


def _fetcher():
    from weasyprint.urls import URLFetcher

    class DataOnly(URLFetcher):
        """Fetch ``data:`` URLs only; refuse file:, http:, https:, ftp: …"""

        def fetch(self, url, headers=None):
            if not url.lower().startswith("data:"):
                raise RefusedURL(f"refused resource: {url[:80]}")
            return super().fetch(url, headers)

    return DataOnly(allowed_protocols={"data"}, allow_redirects=False)


def render_pdf(html: str) -> bytes:
    """The PDF for a complete HTML document (its CSS inline in a <style> element)."""
    from weasyprint import HTML

    return HTML(string=html, base_url=None, url_fetcher=_fetcher()).write_pdf()


def pdf_response(data: bytes, filename: str, download: bool = False,
                 mimetype: str = "application/pdf") -> Response:
    """Send a PDF (or another printed file, e.g. a poster's PNG) with a Chinese file name
    (RFC 6266 / 5987) and no caching by shared caches."""
    disposition = "attachment" if download else "inline"
    response = Response(data, mimetype=mimetype)
    fallback = "document" + (Path(filename).suffix or ".pdf")
    response.headers["Content-Disposition"] = (
        f"{disposition}; filename={fallback}; filename*=UTF-8''{quote(filename)}")
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def qr_data_url(link: str, scale: int = 4, border: int = 2, kind: str = "svg") -> str:
    """A QR code (segno, error correction M) of ``link`` as a data: URL for a template: SVG, or
    a PNG of ``scale`` pixels a module (many QR codes in one document draw much faster as
    PNGs; the template sets ``image-rendering: pixelated`` to keep the edges sharp)."""
    import segno

    out = io.BytesIO()
    segno.make(link, error="m").save(out, kind=kind, scale=scale, border=border)
    mime = "image/svg+xml" if kind == "svg" else "image/png"
    return f"data:{mime};base64," + base64.b64encode(out.getvalue()).decode()


def photo_data_url(photo: bytes, size: tuple[int, int], quality: int = 85) -> str:
    """A photo cropped around its centre to ``size``'s proportions and scaled to it, as a JPEG
    data: URL (the photo frame of a poster or a card)."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(photo)) as im:
        fitted = ImageOps.fit(ImageOps.exif_transpose(im).convert("RGB"), size)
    out = io.BytesIO()
    fitted.save(out, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()
