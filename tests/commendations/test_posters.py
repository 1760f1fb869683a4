"""好邻 posters: the A3 PDF's text and fonts, the PNG's size, the cache, hostile text."""

import io
import shutil
import subprocess

import pytest
from PIL import Image

from portal.blueprints.commendations import posters
from portal.blueprints.commendations.posters import PosterData
from tests.conftest import jpeg

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                   reason="poppler-utils (make test installs it)")


def data(**changes) -> PosterData:
    fields = dict(name="胡新林", honour="江背好邻", series="《江背“好邻” 幸福同行》",
                  where="江背镇 · 特立村 · 杨家井组",
                  deeds="常年照看独居老人。<script>alert(1)</script><img src=file:///etc/passwd>",
                  stats={"households": 11, "visits": 86, "requests": 9, "disputes": 3,
                         "points": 155},
                  campaign="2026 年度江背好邻评选", issuer="江背镇人民政府",
                  link="http://127.0.0.1/honour/1", photo=None)
    fields.update(changes)
    return PosterData(**fields)


@needs_poppler
@pytest.mark.parametrize("design", ["red", "plain"])
def test_the_pdf_says_who_and_embeds_font_subsets(app, tmp_path, design):
    with app.test_request_context():
        pdf, fresh = posters.poster_pdf(data(), design)
    assert fresh and pdf.startswith(b"%PDF")
    assert len(pdf) <= 300_000  # DESIGN §6, without a photo
    path = tmp_path / "p.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    for expected in ("胡新林", "江背好邻", "特立村", "杨家井组", "155",
                     "<script>alert(1)</script>", "file:///etc/passwd"):
        assert expected in text.replace("\n", ""), expected
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True,
                           check=True).stdout.splitlines()[2:]
    assert fonts and all("+" in line.split()[0] for line in fonts), fonts  # subsets
    assert all(" yes yes " in line for line in fonts), fonts  # embedded, subset


def test_cached_until_something_printed_changes(app):
    with app.test_request_context():
        first, fresh = posters.poster_pdf(data(), "red")
        again, fresh_again = posters.poster_pdf(data(), "red")
        assert fresh and not fresh_again and again == first
        assert posters.poster_pdf(data(deeds="改过的事迹，内容不同了。"), "red")[1]
        assert posters.poster_pdf(data(), "plain")[1]  # the other design
        assert posters.poster_pdf(data(photo=jpeg((1200, 900))), "red")[1]


def test_the_png_is_article_sized_and_the_photo_fits(app):
    with app.test_request_context():
        png = posters.poster_png(data(photo=jpeg((640, 1600))), "plain")
        assert posters.poster_png(data(photo=jpeg((640, 1600))), "plain") == png
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    width, height = image.size  # A3's proportions (pdfium rounds the height up)
    assert width == posters.PNG_WIDTH and abs(height - posters.PNG_WIDTH * 420 / 297) < 1


def test_an_unknown_design_is_refused(app):
    with app.test_request_context(), pytest.raises(ValueError):
        posters.poster_html(data(), "gold")
