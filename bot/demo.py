"""The demo workspace: example config, a SQLite database and generated data, imported for real."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Literal

from config.settings import EXAMPLE_CONFIG_DIR
from kpi_engine.db import make_engine, upgrade
from kpi_engine.demo_data import FILE_KINDS, generate, write_large_config
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.organisation import load_organisation
from kpi_engine.rollups import Rollups

Echo = Callable[[str], object]


def create_workspace(
    directory: Path, *, reset: bool, days: int, seed: int, end: date, echo: Echo
) -> Path:
    """Create (or reuse) a demo workspace in `directory` and print how to use it."""
    directory = directory.resolve()
    config_dir, data_dir, db_file = (
        directory / "config",
        directory / "data",
        directory / "kpibot.db",
    )
    database_url = f"sqlite:///{db_file}"
    if reset and directory.exists():
        shutil.rmtree(directory)
    if db_file.exists():
        echo(f"Using the existing demo workspace {directory} (--reset starts afresh).")
    else:
        started = time.perf_counter()
        config_dir.mkdir(parents=True, exist_ok=True)
        for example in sorted(EXAMPLE_CONFIG_DIR.glob("*.yaml")):
            shutil.copy(example, config_dir / example.name)
        organisation = load_organisation(config_dir)
        generated = generate(
            organisation, config_dir, data_dir, scale="small", days=days, end=end, seed=seed
        )
        upgrade(database_url)
        engine = make_engine(database_url)
        try:
            for label, path in generated.files.items():
                kind = KINDS[FILE_KINDS.get(label, label)]
                report = import_file(engine, organisation, kind, path, parallel=True)
                echo(f"  {report.render()}")
                if not report.ok:
                    raise SystemExit(f"demo data failed to import: {path}")
            Rollups(engine, organisation).ensure_current(now=int(time.time()))
        finally:
            engine.dispose()
        echo(f"Created the demo workspace {directory} in {time.perf_counter() - started:.1f} s:")
        echo(
            f"  config    {config_dir}  ({len(organisation.teams)} teams, "
            f"{len(organisation.people)} people, {len(organisation.shops)} shops)"
        )
        echo(f"  data      {data_dir}  ({days} days ending {end.isoformat()})")
        echo(f"  database  {db_file}")
    echo("")
    echo("To work with it:")
    echo(f"  export KPIBOT_CONFIG_DIR={config_dir}")
    echo(f"  export KPIBOT_DATABASE_URL={database_url}")
    echo("  kpibot report --entity team:sz-live --period this_month --why")
    echo("  kpibot report gmv --entity person:li.na --period today")
    echo("  kpibot scorecard li.na")
    echo("  kpibot import orders my-orders.csv")
    echo('  kpibot ask --as li.na "今天GMV多少"      # a streamer, privately')
    echo("  kpibot chat --as wang.fang --channel sz-live   # the team manager, in the group")
    return directory


def generate_files(
    out: Path, scale: Literal["small", "large"], days: int, seed: int, end: date, echo: Echo
) -> Path:
    """Write a config and CSV files for benchmarks, streaming rows to disk."""
    out = out.resolve()
    config_dir = out / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    if scale == "large":
        write_large_config(config_dir, seed=seed)
    else:
        for example in sorted(EXAMPLE_CONFIG_DIR.glob("*.yaml")):
            shutil.copy(example, config_dir / example.name)
    organisation = load_organisation(config_dir)
    started = time.perf_counter()
    generated = generate(
        organisation, config_dir, out / "data", scale=scale, days=days, end=end, seed=seed
    )
    echo(
        f"Wrote {scale} data for {days} days ending {end.isoformat()} "
        f"in {time.perf_counter() - started:.1f} s:"
    )
    echo(f"  config  {config_dir}")
    for label, path in generated.files.items():
        echo(f"  {label:<16} {generated.counts.get(label, 0):>12,} rows  {path}")
    return out
