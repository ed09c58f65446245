"""Fixtures of the notification tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.notify.world import Env, running_env


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    yield from running_env(tmp_path)
