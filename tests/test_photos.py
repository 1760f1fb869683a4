"""Uploaded photos are checked (type, bytes, pixels, a printable size), re-encoded and
stripped of EXIF before anything is stored."""

import io

import pytest
from PIL import Image
from werkzeug.datastructures import FileStorage

from portal.errors import ServiceError
from portal.photos import process_photo


def upload(data: bytes, name="p.jpg") -> FileStorage:
    return FileStorage(io.BytesIO(data), filename=name)


def test_no_file_is_no_photo(app):
    with app.test_request_context():
        assert process_photo(None) is None
        assert process_photo(upload(b"", "")) is None


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_accepted_formats_become_a_plain_jpeg(app, make_image, fmt):
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {2: (28.0, 10.0, 1.0)}  # GPS latitude
    with app.test_request_context():
        out = process_photo(upload(make_image((2000, 1500), exif=exif, fmt=fmt)))
    with Image.open(io.BytesIO(out)) as img:
        assert img.format == "JPEG"
        assert max(img.size) == app.config["PHOTO_MAX_SIDE"]
        assert not img.getexif()
    assert b"SecretCam" not in out


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_other_picture_formats_are_refused_by_name(app, make_image, fmt):
    with app.test_request_context(), pytest.raises(ServiceError, match="JPG、PNG 或 WebP"):
        process_photo(upload(make_image((800, 600), fmt=fmt)))


def test_not_a_picture_is_refused(app):
    with app.test_request_context(), pytest.raises(ServiceError, match="照片无法识别"):
        process_photo(upload(b"<script>alert(1)</script>" * 40))


def test_too_many_bytes_is_refused_before_decoding(app, monkeypatch):
    monkeypatch.setitem(app.config, "PHOTO_MAX_BYTES", 10_000)
    with app.test_request_context(), pytest.raises(ServiceError, match="照片太大"):
        process_photo(upload(b"\xff\xd8" + b"\0" * 20_000))


def test_too_many_pixels_is_refused(app, make_image, monkeypatch):
    monkeypatch.setitem(app.config, "PHOTO_MAX_PIXELS", 1_000_000)
    with app.test_request_context(), pytest.raises(ServiceError, match="像素太多"):
        process_photo(upload(make_image((1200, 1000), fmt="PNG")))


def test_a_printed_photo_needs_its_short_side(app, make_image):
    with app.test_request_context():
        with pytest.raises(ServiceError, match=r"照片太小（500×300）.*不少于 400 像素"):
            process_photo(upload(make_image((500, 300))), min_side=400)
        assert process_photo(upload(make_image((500, 400))), min_side=400)
