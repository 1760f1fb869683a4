"""议事 tests: the fixed clock. (The item and meeting factories are in tests/conftest.py, shared
with the browser tests.)"""

#: A fixed "now" (UTC): Monday 2026-11-16 02:00 UTC = 10:00 in Asia/Shanghai.
from tests.conftest import AGENDA_NOW as NOW  # noqa: F401
