"""Session fixtures: one real Mosquitto and one real VictoriaMetrics for all tests.

Tests that stop or restart a server start their own private instance with
``mosquitto_factory`` / ``victoria_factory`` so they never disturb others.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import Mosquitto, VictoriaMetrics


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    server = VictoriaMetrics(tmp_path_factory.mktemp("victoria"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    started: list[Mosquitto] = []
    counter = itertools.count()

    def make(**kwargs: Any) -> Mosquitto:
        d = tmp_path / f"mosquitto-{next(counter)}"
        d.mkdir()
        server = Mosquitto(d, **kwargs)
        server.start()
        started.append(server)
        return server

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def victoria_factory(tmp_path: Path) -> Iterator[Callable[[], VictoriaMetrics]]:
    started: list[VictoriaMetrics] = []

    def make() -> VictoriaMetrics:
        d = tmp_path / f"victoria-{len(started)}"
        d.mkdir()
        server = VictoriaMetrics(d)
        server.start()
        started.append(server)
        return server

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def unique_id() -> str:
    """A fresh identifier, so tests sharing the broker never share topics."""
    return "t" + uuid.uuid4().hex[:12]
