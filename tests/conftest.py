"""Test fixtures: a fresh, migrated database per test on each selected backend.

`--db sqlite,postgresql` (the default) runs every database test on both. PostgreSQL tests
never skip: if the server cannot be reached the run fails, so CI cannot pass without it.
"""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import hypothesis  # noqa: F401  # loaded now, not by its plugin at the end of a threaded run
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from kpi_engine.db import make_engine, upgrade
from kpi_engine.organisation import Organisation, load_organisation

# The shifted-clock run (scripts/test) repeats, on SQLite only, tests the main run has already
# passed on both backends.
SHIFTED_CLOCK = "faketime" in os.environ.get("LD_PRELOAD", "") and bool(
    os.environ.get("FAKETIME_DONT_FAKE_MONOTONIC")
)
if SHIFTED_CLOCK:
    # The shifted-clock run (scripts/test) moves only the calendar: libfaketime 0.9.10 also
    # shifting the monotonic clock makes every timed wait (threading, queues) last the shift, so
    # it is left alone. Then libfaketime answers Python's time.sleep, an absolute-deadline
    # clock_nanosleep on that clock, with EINVAL: sleeps wait on an event instead. This changes
    # how long nothing happens, never what time it is.
    _never_set = threading.Event()

    def _sleep(seconds: float) -> None:
        _never_set.wait(seconds)

    time.sleep = _sleep

ROOT = Path(__file__).resolve().parent.parent
# The checked configuration's cache (kpi_engine/config_cache.py) goes to this run's own directory,
# not the user's ~/.cache: every process the tests start inherits it.
if "KPIBOT_CACHE_DIR" not in os.environ:
    os.environ["KPIBOT_CACHE_DIR"] = _CACHE = tempfile.mkdtemp(prefix="kpibot-cache-")
    atexit.register(shutil.rmtree, _CACHE, True)
EXAMPLE_CONFIG = ROOT / "config" / "example"
BACKENDS = ("sqlite", "postgresql")
PG_ADMIN_URL = os.environ.get(
    "KPIBOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        default=os.environ.get("KPIBOT_TEST_DB", "sqlite,postgresql"),
        help="comma-separated database backends for database tests: sqlite, postgresql",
    )


def _backends(config: pytest.Config) -> list[str]:
    chosen = [b.strip() for b in str(config.getoption("--db")).split(",") if b.strip()]
    unknown = set(chosen) - set(BACKENDS)
    if unknown or not chosen:
        raise pytest.UsageError(f"--db takes {', '.join(BACKENDS)}; got {chosen}")
    if os.environ.get("CI") and not SHIFTED_CLOCK and set(chosen) != set(BACKENDS):
        raise pytest.UsageError("CI runs the database tests on both SQLite and PostgreSQL")
    return chosen


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_url" in metafunc.fixturenames:
        backends = _backends(metafunc.config)
        # `@pytest.mark.backends("sqlite")`: a test about something other than storage (the
        # message fuzz) runs on the one backend it names, when that one is selected.
        only = metafunc.definition.get_closest_marker("backends")
        if only is not None:
            backends = [b for b in backends if b in only.args]
        metafunc.parametrize("backend", backends, indirect=True)


# The tests that take longest on a loaded two-core machine, longest first (measured with
# `--durations`). Started last, one of them ends the run alone; so each starts at the head of a
# different worker's share (below).
SLOW = (
    "tests/test_rollups.py::test_rollups_follow_every_kind_of_change",
    "tests/test_message_fuzz.py::test_five_thousand_generated_messages",
    "tests/test_render_fuzz.py::test_five_thousand_generated_replies",
    "tests/test_bench_smoke.py::test_the_dashboard_benchmark",
    "tests/test_bench_smoke.py::test_the_fanout_benchmark",
    "tests/test_bench_smoke.py::test_the_import_benchmark",
    "tests/test_bench_smoke.py::test_the_engine_and_chat_benchmarks",
    "tests/test_outbox_crash.py::",
    "tests/test_figures.py::test_every_metric_matches_the_independent_computation",
    "tests/test_demo_and_serve.py::test_the_demo_ends_in_the_console_chat",
    "tests/test_figures.py::test_split_credit_matches_the_independent_computation",
    "tests/test_demo_and_serve.py::test_demo_creates_a_workspace_and_reuses_it",
    "tests/test_rollups.py::test_a_configuration_change_rebuilds_the_rollups",
    "tests/test_sync_crash.py::",
    "tests/test_cli_and_schema.py::test_db_upgrade_and_current",
    "tests/test_demo_and_serve.py::test_generate_only_writes_large_config_and_data",
    "tests/test_connectors_amazon.py::test_the_usage_plan_is_kept",
    "tests/test_corpus.py::test_every_utterance_is_understood_as_meant",
)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Collect once and freeze what is left, after the session's fixtures are torn down.

    A worker's heap is large (the platforms' SDKs alone hold ~170 MiB of objects). After this
    hook xdist reports the worker finished and the controller gives it 5 seconds to exit before
    interrupting it (execnet); pytest meanwhile runs full collections for unraisable exceptions.
    On a busy 2-core machine those collections over the whole heap outlasted the 5 seconds now
    and then, and the KeyboardInterrupt landed in a GC callback (hypothesis's) and was reported as
    an unraisable exception. Frozen objects are skipped by every later collection, so the
    collections after this one take milliseconds."""
    gc.collect()
    gc.freeze()


def _slowness(item: pytest.Item) -> int | None:
    """The rank of a slow test in `SLOW` (0 = slowest), None for the others."""
    return next((n for n, prefix in enumerate(SLOW) if item.nodeid.startswith(prefix)), None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist's work stealing, each worker is first handed a contiguous share of the
    collection (the first `n // workers` tests, then a fair share of the rest, …): the slow
    tests are placed at the heads of those shares, round robin, longest first."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    ranked = sorted(
        ((rank, n) for n, item in enumerate(items) if (rank := _slowness(item)) is not None)
    )
    if workers < 2 or not ranked:
        return
    slow = {n for _, n in ranked}
    rest = iter([item for n, item in enumerate(items) if n not in slow])
    heads: list[list[pytest.Item]] = [[] for _ in range(workers)]
    for k, (_, n) in enumerate(ranked):
        heads[k % workers].append(items[n])
    ordered: list[pytest.Item] = []
    left = len(items)
    for k, head in enumerate(heads):
        share = left // (workers - k)  # as xdist's WorkStealingScheduling.check_schedule
        left -= share
        ordered += head
        ordered += [item for _, item in zip(range(share - len(head)), rest, strict=False)]
    ordered += list(rest)
    assert sorted(map(id, ordered)) == sorted(map(id, items))
    items[:] = ordered


@pytest.fixture(scope="session")
def _templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One migrated template database per backend, built lazily."""
    made: dict[str, str] = {}
    yield made
    if "postgresql" in made:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{made["postgresql"]}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _pg_admin() -> Engine:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({exc.__class__.__name__}). "
            "Start it (see README) or run with --db sqlite.",
            pytrace=False,
        )
    return admin


@pytest.fixture
def db_url(
    backend: str,
    _templates: dict[str, str],
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """A new database, already migrated to head, for this test alone."""
    if backend == "sqlite":
        if "sqlite" not in _templates:
            template = tmp_path_factory.mktemp("template") / "template.db"
            upgrade(f"sqlite:///{template}")
            _templates["sqlite"] = str(template)
        target = tmp_path / "test.db"
        shutil.copy(_templates["sqlite"], target)
        yield f"sqlite:///{target}"
        return
    admin = _pg_admin()
    with admin.connect() as conn:
        if "postgresql" not in _templates:
            name = f"kpibot_tmpl_{uuid.uuid4().hex[:10]}"
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            upgrade(make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False))
            _templates["postgresql"] = name
        database = f"kpibot_t_{uuid.uuid4().hex[:12]}"
        conn.execute(text(f'CREATE DATABASE "{database}" TEMPLATE "{_templates["postgresql"]}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=database).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on this test's database."""
    created = make_engine(db_url)
    yield created
    created.dispose()


@pytest.fixture(scope="session")
def organisation() -> Organisation:
    """The example organisation from config/example."""
    return load_organisation(EXAMPLE_CONFIG)
