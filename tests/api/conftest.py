"""The live node pair every API test uses."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from api_pair import Pair, running_pair


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    async for p in running_pair():
        yield p
