"""A fresh headless Chromium per test (skipped, with the reason, where none is installed)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from browser.cdp import CHROMIUM, Browser, launch


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if CHROMIUM is None:
        pytest.skip("no chromium to drive (apt-get install chromium, or set CHROMIUM=/path)")
    async with launch() as b:
        yield b
