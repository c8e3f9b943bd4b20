"""The demo workspace: example config, a SQLite database and generated data, imported for real."""

from __future__ import annotations

import calendar
import re
import shutil
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal

from bot.queries import MomentOf
from bot.runtime import company_zone
from config.settings import EXAMPLE_CONFIG_DIR
from kpi_engine.db import make_engine, upgrade
from kpi_engine.demo_data import FILE_KINDS, generate, write_large_config
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.instants import UTC, zone
from kpi_engine.organisation import load_organisation
from kpi_engine.rollups import Rollups

Echo = Callable[[str], object]


def create_workspace(
    directory: Path,
    *,
    reset: bool,
    days: int,
    seed: int,
    now: MomentOf,
    echo: Echo,
    template: str | None = None,
) -> Path:
    """Create (or reuse) a demo workspace in `directory` and print how to use it: data for
    `days` days up to the moment `now` gives (today partial, nothing later). The organisation
    is the example's, or a template's (`kpibot init --template`) with its plan starting this
    month; the data includes what the organisation declares as imported metrics (customer
    service's first response time, shops' on-time dispatch…)."""
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
        if template is None:
            zone_name = company_zone(load_organisation(EXAMPLE_CONFIG_DIR))
            moment = now(zone_name)
            months = _months_since_example(datetime.fromtimestamp(moment, zone(zone_name)).date())
            for example in sorted(EXAMPLE_CONFIG_DIR.glob("*.yaml")):
                text = example.read_text(encoding="utf-8")
                (config_dir / example.name).write_text(redate(text, months), encoding="utf-8")
        else:
            write_template(template, config_dir, now)
            zone_name = company_zone(load_organisation(config_dir))
            moment = now(zone_name)
        organisation = load_organisation(config_dir)
        generated = generate(
            organisation, config_dir, data_dir, scale="small", days=days, now=moment, seed=seed
        )
        upgrade(database_url)
        engine = make_engine(database_url)
        try:
            for label, path in generated.files.items():
                kind = KINDS[FILE_KINDS.get(label, label)]
                report = import_file(engine, organisation, kind, path, parallel=True, now=moment)
                echo(f"  {report.render()}")
                if not report.ok:
                    raise SystemExit(f"demo data failed to import: {path}")
            Rollups(engine, organisation).ensure_current(now=moment)
        finally:
            engine.dispose()
        echo(f"Created the demo workspace {directory} in {time.perf_counter() - started:.1f} s:")
        echo(
            f"  config    {config_dir}  ({len(organisation.teams)} teams, "
            f"{len(organisation.people)} people, {len(organisation.shops)} shops)"
        )
        ending = datetime.fromtimestamp(moment, zone(zone_name)).strftime("%Y-%m-%d %H:%M %Z")
        echo(f"  data      {data_dir}  ({days} days up to {ending})")
        echo(f"  database  {db_file}")
    echo("")
    echo("To work with it:")
    echo(f"  export KPIBOT_CONFIG_DIR={config_dir}")
    echo(f"  export KPIBOT_DATABASE_URL={database_url}")
    if template is not None:
        organisation = load_organisation(config_dir)
        team = next(iter(organisation.teams))
        echo(f"  kpibot report --entity team:{team} --period this_month --why")
        for role, question in (("streamer", "今天GMV多少"), ("cs", "我的首次回复时间")):
            person = next((p.id for p in organisation.people.values() if p.role == role), None)
            if person is not None:
                echo(f'  kpibot ask --as {person} "{question}"')
                echo(f"  kpibot scorecard {person}")
        return directory
    echo("  kpibot report --entity team:sz-live --period this_month --why")
    echo("  kpibot report gmv --entity person:li.na --period today")
    echo("  kpibot scorecard li.na")
    echo("  kpibot import orders my-orders.csv")
    echo('  kpibot ask --as li.na "今天GMV多少"      # a streamer, privately')
    echo("  kpibot chat --as wang.fang --channel sz-live   # the team manager, in the group")
    return directory


# The month the example organisation describes (its plan began in July, a streamer joined in
# mid-October): the demo moves its dates by whole months so that "now" is as far into its story.
_EXAMPLE_MONTH = (2026, 11)
_DAY_TEXT = re.compile(r"(?<![\d-])(\d{4})-(\d{2})-(\d{2})(?![\d-])")
_MONTH_TEXT = re.compile(r"(?<![\d-])(\d{4})-(\d{2})(?![\d-])")


def write_template(template: str, directory: Path, now: MomentOf) -> date:
    """Write a template's organisation into `directory` with its plan (and its new hire and
    assignments) starting on the first of this month; return that day. Raises ValueError for
    an unknown template."""
    from config.settings import TEMPLATES_DIR

    source = TEMPLATES_DIR / template
    if not source.is_dir():
        names = ", ".join(sorted(p.name for p in TEMPLATES_DIR.iterdir() if p.is_dir()))
        raise ValueError(f"unknown template {template!r}; templates: {names}")
    first = datetime.fromtimestamp(now("UTC"), UTC).date().replace(day=1)
    directory.mkdir(parents=True, exist_ok=True)
    for file in sorted(source.glob("*.yaml")):
        text = file.read_text(encoding="utf-8").replace("__START__", first.isoformat())
        (directory / file.name).write_text(text, encoding="utf-8")
    return first


def _months_since_example(day: date) -> int:
    return (day.year - _EXAMPLE_MONTH[0]) * 12 + day.month - _EXAMPLE_MONTH[1]


def _shift(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + month - 1 + months
    return index // 12, index % 12 + 1


def redate(text: str, months: int) -> str:
    """Configuration text with every date (2026-07-01) and month (2026-07) moved by `months`
    (a day past the end of its new month becomes the month's last day)."""
    if months == 0:
        return text

    def day(match: re.Match[str]) -> str:
        year, month = _shift(int(match[1]), int(match[2]), months)
        last = calendar.monthrange(year, month)[1]
        return f"{year:04d}-{month:02d}-{min(int(match[3]), last):02d}"

    def month(match: re.Match[str]) -> str:
        year, month = _shift(int(match[1]), int(match[2]), months)
        return f"{year:04d}-{month:02d}"

    return _MONTH_TEXT.sub(month, _DAY_TEXT.sub(day, text))


def generate_files(
    out: Path, scale: Literal["small", "large"], days: int, seed: int, now: int, echo: Echo
) -> Path:
    """Write a config and CSV files for benchmarks, streaming rows to disk: `days` days of
    data up to the instant `now`."""
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
    # Whole days, the last one over everywhere: benchmarks measure full days of trading.
    end = datetime.fromtimestamp(now, UTC).date() - timedelta(days=2)
    generated = generate(
        organisation, config_dir, out / "data", scale=scale, days=days, end=end, seed=seed
    )
    echo(
        f"Wrote {scale} data for {days} whole days ending {end.isoformat()} "
        f"in {time.perf_counter() - started:.1f} s:"
    )
    echo(f"  config  {config_dir}")
    for label, path in generated.files.items():
        echo(f"  {label:<16} {generated.counts.get(label, 0):>12,} rows  {path}")
    return out
