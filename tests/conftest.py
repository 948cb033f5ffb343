"""Shared fixtures: the real seeds, and one real index built from them per session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from chronsearch import ChronicleIndex, build

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def seeds_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding an index of the seeds; tests must not write to it."""
    index = tmp_path_factory.mktemp("seeds-index")
    stats = build(SEEDS, index)
    assert stats.errors == ()
    return index


@pytest.fixture(scope="session")
def ix(seeds_index: Path) -> Iterator[ChronicleIndex]:
    with ChronicleIndex.open(seeds_index) as opened:
        yield opened


@pytest.fixture
def seeds_copy(tmp_path: Path) -> Path:
    """A writable copy of the seeds, for tests that add or break files."""
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    return target
