"""Handing an openpyxl workbook to the browser, one way for every XLSX download (the 台账, the
roster templates and problem lists, the 优秀 list): saved to a temporary file (a town's ledger
runs to megabytes), streamed in chunks with its Chinese name (``filename*``) and an ASCII
fallback, and kept out of shared caches."""

from __future__ import annotations

import tempfile
from urllib.parse import quote

from flask import Response

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHUNK = 64 * 1024


def save(wb):
    """The workbook written to an anonymous temporary file, rewound (the caller closes it)."""
    out = tempfile.TemporaryFile()  # noqa: SIM115 -- the response closes it
    try:
        wb.save(out)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def download_xlsx(wb, filename: str, fallback: str) -> Response:
    """A response that downloads ``wb`` as ``filename`` (``fallback`` for old browsers)."""
    stream = save(wb)
    size = stream.seek(0, 2)
    stream.seek(0)

    def chunks():
        try:
            while chunk := stream.read(CHUNK):
                yield chunk
        finally:
            stream.close()

    response = Response(chunks(), mimetype=XLSX)
    response.call_on_close(stream.close)  # also when the download is cut short
    response.headers["Content-Length"] = str(size)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}")
    response.headers["Cache-Control"] = "private, no-store"
    return response
