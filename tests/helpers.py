"""Helpers shared by several test modules (no test module imports another).

Fixtures live in tests/conftest.py; plain functions and constants that tests
call live here, imported as `from tests.helpers import ...` (setup.cfg puts
the repository root on pytest's path).
"""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
