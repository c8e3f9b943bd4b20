"""The cache of the checked configuration: served only for the very bytes it was checked from;
a corrupt, foreign or unwritable cache is ignored."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from kpi_engine.config_cache import cache_file, cache_key, read_cached, write_cached
from kpi_engine.organisation import ConfigError, config_files, load_organisation
from tests.conftest import EXAMPLE_CONFIG


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, target)
    return target


def _edit_keeping_size_and_mtime(path: Path, old: str, new: str) -> None:
    """Change a file without changing its size or modification time (as a copy may)."""
    assert len(old.encode()) == len(new.encode())
    before = path.stat()
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size


def test_a_second_load_is_served_from_the_cache(config_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = load_organisation(config_dir, cache)
    entry = cache_file(cache, config_dir)
    assert entry.is_file()
    # What the cache holds is what a load returns: plant a marked copy under the same key.
    marked = dataclasses.replace(
        first, settings=first.settings.model_copy(update={"name": "from the cache"})
    )
    write_cached(entry, cache_key(config_dir, config_files(config_dir)), marked)
    assert load_organisation(config_dir, cache).settings.name == "from the cache"
    assert load_organisation(config_dir).settings.name == first.settings.name  # no cache given


def test_a_changed_file_is_never_served_from_the_cache(config_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert load_organisation(config_dir, cache).people["li.na"].name == "李娜"
    _edit_keeping_size_and_mtime(config_dir / "people.yaml", "name: 李娜", "name: 李梅")
    assert load_organisation(config_dir, cache).people["li.na"].name == "李梅"
    # A new file counts too: a targets CSV the first load did not read.
    before = load_organisation(config_dir, cache)
    (config_dir / "targets-extra.csv").write_text(
        "plan,metric,entity,period,value\n2026-h2,orders,person:li.na,2026-11,300\n",
        encoding="utf-8",
    )
    after = load_organisation(config_dir, cache)
    assert len(after.targets) == len(before.targets) + 1
    # And an error introduced later is reported, not hidden behind the cached organisation.
    _edit_keeping_size_and_mtime(config_dir / "people.yaml", "team: sz-live", "team: sz-lxve")
    with pytest.raises(ConfigError):
        load_organisation(config_dir, cache)


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"garbage",
        lambda data: data[: len(data) // 2],  # right key, truncated pickle
        lambda data: data[:-40] + bytes(40),
        lambda data: b"",
    ],
)
def test_a_corrupt_cache_file_is_ignored_and_replaced(
    config_dir: Path, tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    cache = tmp_path / "cache"
    expected = load_organisation(config_dir, cache)
    entry = cache_file(cache, config_dir)
    entry.write_bytes(damage(entry.read_bytes()))
    assert load_organisation(config_dir, cache) == expected
    key = cache_key(config_dir, config_files(config_dir))
    assert read_cached(entry, key) == expected  # written again, whole


def test_a_cache_that_cannot_be_written_is_skipped(config_dir: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache directory would be", encoding="utf-8")
    expected = load_organisation(config_dir)
    assert load_organisation(config_dir, blocked) == expected
    assert load_organisation(config_dir, blocked / "deeper") == expected
