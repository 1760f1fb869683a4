"""Default settings. ``instance/config.py`` and ``PORTAL_*`` environment variables override them."""

from datetime import timedelta

SECRET_KEY = "dev-only-change-me"  # overridden by PORTAL_SECRET_KEY or instance/config.py
SQLALCHEMY_DATABASE_URI = None  # None → sqlite:///<instance>/portal.db
SQLALCHEMY_ENGINE_OPTIONS: dict = {}

#: Sessions end after this much inactivity (the cookie is refreshed on each request).
PERMANENT_SESSION_LIFETIME = timedelta(hours=8)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = False  # set True behind HTTPS in production
REMEMBER_COOKIE_DURATION = timedelta(seconds=0)

WTF_CSRF_TIME_LIMIT = None  # token lives as long as the session
WTF_CSRF_HEADERS = ["X-CSRFToken"]

#: Requests larger than this are refused with a clear message (413).
MAX_CONTENT_LENGTH = 8 * 1024 * 1024
#: Where uploaded photos are kept; None → <instance>/uploads.
UPLOAD_DIR = None
#: Where roster imports keep the uploaded file and the job's state until done; None →
#: <instance>/imports. Not under static: residents' phones are in the files.
IMPORT_DIR = None
#: Photos are downscaled so their longer side is at most this many pixels.
PHOTO_MAX_SIDE = 1280
#: An uploaded photo may be at most this many bytes and this many pixels (a phone's 48 MP
#: camera is allowed; a decompression bomb is not).
PHOTO_MAX_BYTES = 7 * 1024 * 1024
PHOTO_MAX_PIXELS = 60_000_000

RATELIMIT_STORAGE_URI = "memory://"
RATELIMIT_HEADERS_ENABLED = True
#: Login attempts per client address.
LOGIN_RATE_LIMIT = "10 per minute;50 per hour"

#: werkzeug hash method for passwords; tests use cheaper scrypt parameters.
PASSWORD_HASH_METHOD = "scrypt"

DISPLAY_TIMEZONE = "Asia/Shanghai"

COMPRESS_MIMETYPES = ["text/html", "text/css", "application/javascript", "text/javascript"]
COMPRESS_ALGORITHM = ["gzip"]
COMPRESS_MIN_SIZE = 500
#: Static files are served with a content hash in the URL and cached for a year.
SEND_FILE_MAX_AGE_DEFAULT = timedelta(days=365)

#: The household link of 民情诉求 (/r/<token>), per client address: opening its pages (against
#: guessing tokens) and sending its forms (the request, a rating, a reopening).
PUBLIC_LINK_RATE_LIMIT = "30 per minute"
PUBLIC_REQUEST_RATE_LIMIT = "5 per minute;30 per day"

#: 议事: wrong voting codes per client address (/v). Only failures count — 300 households at one
#: 议事亭 share one Wi-Fi address, and typing a good code never uses up the budget.
AGENDA_CODE_LIMIT = "20 per minute;200 per day"
