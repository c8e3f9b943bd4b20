"""The `kpibot` command line: configuration, database, imports, demo workspace and server.

Start-up is measured (`kpibot --help` ≤ 0.3 s): at module level only typer and the standard
library; each command imports the engine, the database and the settings it uses.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from bot.compose import Bot
    from bot.console import ConsoleChat
    from bot.queries import FigureQuery, MomentOf
    from config.settings import Settings
    from kpi_engine.organisation import Organisation

# The kinds of kpi_engine.ingest.formats.KINDS, named here for `import --help` without importing
# the storage models (tests/test_startup.py keeps the two equal).
IMPORT_KINDS = ("orders", "refunds", "live_sessions", "ad_spend", "fx_rates", "metric_values")

app = typer.Typer(
    help="kpibot — KPI targets, progress, alerts and appeals for e-commerce teams in chat.",
    no_args_is_help=True,
    add_completion=False,
)
config_app = typer.Typer(help="Check the organisation configuration.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)
schedule_app = typer.Typer(help="The digest schedule and its run ledger.", no_args_is_help=True)
outbox_app = typer.Typer(
    help="Messages waiting, failed or dead-lettered; retry or drop one.",
    invoke_without_command=True,
)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(schedule_app, name="schedule")
app.add_typer(outbox_app, name="outbox")
apikey_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")


def _settings() -> Settings:
    from config.settings import Settings

    return Settings()


NowOption = Annotated[
    str | None,
    typer.Option(
        "--now",
        help="Answer as at this moment: 2026-11-24T10:30 (a local time of whom it is about) "
        "or with an offset (…+08:00); default KPIBOT_NOW, else the clock",
    ),
]


def _moment_of(now: str | None) -> MomentOf:
    """The moment of `--now` (or KPIBOT_NOW, or the clock), read in a given time zone."""
    from kpi_engine.clock import parse_now, system_clock
    from kpi_engine.instants import InstantError

    text = now or _settings().now

    def moment(timezone: str) -> int:
        if text is None:
            return int(system_clock())
        try:
            return parse_now(text, timezone)
        except InstantError as exc:
            typer.echo(f"--now {text!r} {exc}", err=True)
            raise typer.Exit(2) from None

    return moment


def _person_zone(organisation: Organisation, person: str) -> str:
    found = organisation.people.get(person)
    if found is None:
        typer.echo(f"Unknown person {person!r} (see people.yaml)", err=True)
        raise typer.Exit(2)
    return organisation.teams[found.team].timezone


def _organisation(settings: Settings) -> Organisation:
    from kpi_engine.organisation import ConfigError, load_organisation

    try:
        return load_organisation(settings.config_dir, settings.cache_dir)
    except ConfigError as exc:
        typer.echo(f"The configuration in {settings.config_dir} has errors:", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        typer.echo("Run `kpibot config check` for the full list.", err=True)
        raise typer.Exit(2) from None


@config_app.command("check")
def config_check(
    directory: Annotated[
        Path | None, typer.Argument(help="Config directory (default: KPIBOT_CONFIG_DIR)")
    ] = None,
    month: Annotated[
        str | None, typer.Option(help="Show the targets of this month (YYYY-MM; default: now)")
    ] = None,
) -> None:
    """Validate the organisation configuration and print every problem, or a summary."""
    from kpi_engine.organisation import check_organisation

    config_dir = directory or _settings().config_dir
    organisation, problems = check_organisation(config_dir)
    for problem in problems:
        typer.echo(str(problem), err=problem.severity == "error")
    if organisation is None:
        errors = sum(1 for p in problems if p.severity == "error")
        typer.echo(f"{errors} error(s) in {config_dir}.", err=True)
        raise typer.Exit(1)
    typer.echo(_summary(organisation, config_dir))
    try:
        first = date.fromisoformat(f"{month}-01") if month else None
    except ValueError:
        typer.echo(f"--month takes YYYY-MM, not {month!r}", err=True)
        raise typer.Exit(2) from None
    typer.echo(_targets_summary(organisation, first))


def _targets_summary(organisation: Organisation, month: date | None) -> str:
    """One line per entity and metric: the month's target and where it comes from."""
    from kpi_engine.figures import format_value
    from kpi_engine.periods import today
    from kpi_engine.targets import Plans

    if month is None:
        zone = next(iter(organisation.teams.values())).timezone if organisation.teams else "UTC"
        month = today(_moment_of(None)(zone), zone)
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    found = plans.lines(month)
    lines = [f"Targets in {month:%Y-%m} ({len(found)}):"]
    # People on a role-wide default with the same value share one line.
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for line in found:
        metric = organisation.catalogue.metrics[line.metric]
        currency = organisation.currency_of(line.scope) if metric.unit == "money" else None
        entity = f"{line.scope.kind}:{line.scope.id}" if line.scope.id else line.scope.kind
        sources = "; ".join(f"{t.label()} (plan {t.plan})" for t in line.sources)
        value = format_value(line.value, metric.unit, currency)
        if all(t.default for t in line.sources):
            grouped.setdefault((line.metric, value, sources), []).append(line.scope.id)
        else:
            lines.append(f"  {entity:<20} {line.metric:<18} {value:>18}  {sources}")
    for (metric_key, value, sources), people in grouped.items():
        who = ", ".join(people)
        who = who if len(who) <= 18 else f"{len(people)} people"
        lines.append(f"  {'(' + who + ')':<20} {metric_key:<18} {value:>18}  {sources}")
    if not found:
        lines.append("  none: no target applies this month (see docs/metrics.md, Targets)")
    return "\n".join(lines)


def _summary(organisation: Organisation, config_dir: Path) -> str:
    from kpi_engine.organisation import ROLES

    lines = [f"{config_dir}: OK — {organisation.settings.name}"]
    lines.append(f"Teams ({len(organisation.teams)}):")
    for team in organisation.teams.values():
        members = sum(1 for p in organisation.people.values() if p.team == team.id)
        lines.append(
            f"  {team.id:<12} {team.name} · {team.timezone} · {team.currency} · {team.language}"
            f" · {members} people"
        )
    roles: Counter[str] = Counter(p.role for p in organisation.people.values())
    counts = ", ".join(f"{role} {roles[role]}" for role in ROLES if roles[role])
    lines.append(f"People ({len(organisation.people)}): {counts}")
    lines.append(f"Shops ({len(organisation.shops)}):")
    for shop in organisation.shops.values():
        lines.append(
            f"  {shop.id:<12} {shop.platform} {shop.region} · {shop.timezone} · {shop.currency}"
        )
    lines.append(f"Assignments: {len(organisation.assignments)}")
    return "\n".join(lines)


@app.command("init")
def init(
    directory: Annotated[Path, typer.Argument(help="New configuration directory")],
    template: Annotated[
        str, typer.Option(help="tiktok-live-team, amazon-jp-team or shopee-sea-team")
    ],
    start: Annotated[
        str | None, typer.Option(help="First month of the plan, YYYY-MM (default: this month)")
    ] = None,
) -> None:
    """Write a complete organisation to start from (roles, scorecards, targets, calendar,
    alerts, schedules), then check it."""
    from config.settings import TEMPLATES_DIR
    from kpi_engine.periods import today

    source = TEMPLATES_DIR / template
    if not source.is_dir():
        names = ", ".join(sorted(p.name for p in TEMPLATES_DIR.iterdir() if p.is_dir()))
        typer.echo(f"Unknown template {template!r}; templates: {names}", err=True)
        raise typer.Exit(2)
    if directory.exists() and any(directory.iterdir()):
        typer.echo(f"{directory} is not empty; choose a new directory", err=True)
        raise typer.Exit(2)
    try:
        first = (
            date.fromisoformat(f"{start}-01")
            if start
            else today(_moment_of(None)("UTC"), "UTC").replace(day=1)
        )
    except ValueError:
        typer.echo(f"--start takes YYYY-MM, not {start!r}", err=True)
        raise typer.Exit(2) from None
    directory.mkdir(parents=True, exist_ok=True)
    for file in sorted(source.glob("*.yaml")):
        text = file.read_text(encoding="utf-8").replace("__START__", first.isoformat())
        (directory / file.name).write_text(text, encoding="utf-8")
    typer.echo(f"Wrote the {template} organisation to {directory}; the plan starts {first}.")
    config_check(directory, month=f"{first:%Y-%m}")


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
) -> None:
    """Apply schema migrations to KPIBOT_DATABASE_URL."""
    from kpi_engine.db import current_revision, upgrade

    settings = _settings()
    upgrade(settings.database_url, revision)
    typer.echo(f"Database at revision {current_revision(settings.database_url)}.")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of KPIBOT_DATABASE_URL."""
    from kpi_engine.db import current_revision

    typer.echo(current_revision(_settings().database_url) or "empty (run `kpibot db upgrade`)")


@db_app.command("rollups")
def db_rollups(
    check: Annotated[
        bool, typer.Option("--check", help="Also compare them with a full recomputation")
    ] = False,
) -> None:
    """Bring the rollups up to date with the imported rows (queries also do this when needed)."""
    from kpi_engine.rollups import Rollups

    with _database() as (organisation, engine):
        rollups = Rollups(engine, organisation)
        now = _moment_of(None)("UTC")
        started = time.perf_counter()
        changed = rollups.ensure_current(now=now)
        elapsed = time.perf_counter() - started
        typer.echo(
            f"Rollups brought up to date in {elapsed:.1f} s."
            if changed
            else "Rollups are up to date."
        )
        if check:
            mismatches = rollups.verify(now=now)
            for mismatch in mismatches[:20]:
                typer.echo(
                    f"  {' / '.join(map(str, mismatch.key))}: stored {mismatch.stored}, "
                    f"recomputed {mismatch.computed}",
                    err=True,
                )
            if mismatches:
                typer.echo(f"{len(mismatches)} rollup rows differ from the raw rows.", err=True)
                raise typer.Exit(1)
            typer.echo("Rollups equal a full recomputation from the raw rows.")


@app.command("import")
def import_command(
    kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(IMPORT_KINDS)}")],
    files: Annotated[list[Path], typer.Argument(help="CSV or XLSX files", exists=True)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the reports as JSON")] = False,
    export: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="A seller-centre export as it is: tiktok-export, "
            "amazon-orders-report or shopee-export (with --shop)",
        ),
    ] = None,
    shop: Annotated[str | None, typer.Option("--shop", help="The shop of a --from file")] = None,
) -> None:
    """Import data files (CSV/XLSX); each file is imported whole or not at all."""
    if export is not None:
        from bot.shop_cli import import_export

        import_export(kind, files, export, shop, as_json)
        return
    from kpi_engine.ingest.formats import KINDS
    from kpi_engine.ingest.importer import import_file

    spec = KINDS.get(kind)
    if spec is None:
        typer.echo(f"Unknown kind {kind!r}; kinds: {', '.join(KINDS)}", err=True)
        raise typer.Exit(2)
    with _database() as (organisation, engine):
        now = _moment_of(None)("UTC")
        reports = [
            import_file(engine, organisation, spec, f, parallel=True, now=now) for f in files
        ]
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in reports], ensure_ascii=False, indent=2))
    else:
        for report in reports:
            typer.echo(report.render(), err=not report.ok)
    if not all(r.ok for r in reports):
        raise typer.Exit(1)


DEFAULT_REPORT = ["gmv", "orders", "aov", "net_gmv", "refund_rate", "live_gpm", "roas"]


@app.command("report")
def report(
    metrics: Annotated[
        list[str] | None, typer.Argument(help="Metric keys (default: a GMV overview)")
    ] = None,
    entity: Annotated[str, typer.Option(help="company, team:<id> or shop:<id>")] = "company",
    period: Annotated[
        str, typer.Option(help="today, yesterday, this_week, last_month, 2026-11, A..B, …")
    ] = "today",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    why: Annotated[
        bool, typer.Option("--why", help="Also explain GMV's change against the previous period")
    ] = False,
    compare: Annotated[
        str, typer.Option(help="Compare with the previous period, year_ago, or none")
    ] = "previous",
    now: NowOption = None,
) -> None:
    """Show figures for an entity and period: targets, pace, comparison, provisional marks."""
    from bot.report import explanation_json, progress_json, render_explanation, render_table

    with _query(entity, period, now) as query:
        wanted = metrics or DEFAULT_REPORT
        results = query.figures.figures(wanted, query.scope, query.period, now=query.now)
        earlier = query.earlier(compare)
        before = (
            query.figures.figures(wanted, query.scope, earlier, now=query.now) if earlier else {}
        )
        explanation = (
            query.figures.explain(query.scope, query.period, now=query.now) if why else None
        )
    rows = [query.plans.progress(figure, query.now) for figure in results.values()]
    if as_json:
        payload: dict[str, object] = {
            "figures": [progress_json(r, before.get(r.figure.metric)) for r in rows]
        }
        if explanation is not None:
            payload["explanation"] = explanation_json(
                explanation, query.period, query.currency, query.figures.catalogue
            )
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    typer.echo(render_table(rows, before))
    if why:
        typer.echo(
            render_explanation(explanation, query.period, query.currency, query.figures.catalogue)
            if explanation
            else "GMV cannot be explained for this period (no data)."
        )


@app.command("scorecard")
def scorecard_command(
    person: Annotated[str, typer.Argument(help="Person id")],
    period: Annotated[str, typer.Option(help="this_month, last_month, 2026-11, …")] = "this_month",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    now: NowOption = None,
) -> None:
    """Show a person's role scorecard and bonus preview for a period."""
    from bot.report import render_scorecard, scorecard_json
    from kpi_engine.scoring import scorecard

    with _query(f"person:{person}", period, now) as query:
        card = scorecard(query.figures, query.plans, person, query.period, now=query.now)
    organisation = query.figures.organisation
    if card is None:
        role = organisation.people[person].role
        typer.echo(f"No scorecard is configured for the role {role!r}.", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(scorecard_json(card, query.currency), ensure_ascii=False, indent=2))
    else:
        name = organisation.people[person].name
        typer.echo(render_scorecard(card, f"{name} ({person})", query.period, query.currency))


@app.command("rescore")
def rescore_command(
    month: Annotated[str, typer.Argument(help="A closed month, e.g. 2026-11")],
    by: Annotated[str, typer.Option("--by", help="Who re-scores (a manager or admin id)")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit trail)")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, change nothing")] = False,
) -> None:
    """Judge a closed month by the current targets and scorecards (audited); until then it
    keeps the configuration it closed with."""
    from kpi_engine.figures import Figures
    from kpi_engine.scoring import rescore

    with _database() as (organisation, engine):
        person = organisation.people.get(by)
        if person is None or person.role not in ("manager", "admin"):
            typer.echo(f"--by must be a manager or admin, not {by!r}", err=True)
            raise typer.Exit(2)
        try:
            done = rescore(
                Figures(engine, organisation), month, by, reason, now=_moment_of(None)("UTC"),
                apply=not dry_run,
            )  # fmt: skip
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
    before = done.before.label if done.before else "not closed yet"
    typer.echo(
        f"{month}: configuration {before} → v{done.after.id} ({done.after.fingerprint[:12]})"
    )
    for change in done.target_changes:
        typer.echo(f"  target {change}")
    if done.scorecards_changed:
        typer.echo("  scorecards changed")
    for person_id, (old, new) in (done.scores or {}).items():
        if old != new:
            typer.echo(f"  {person_id}: score {_score_text(old)} → {_score_text(new)}")
    if done.before is not None and done.before.id == done.after.id:
        typer.echo("Already judged by the current configuration; nothing to do.")
    elif dry_run:
        typer.echo("Dry run: nothing changed.")
    else:
        typer.echo("Re-scored; recorded in the configuration audit trail.")


def _score_text(card: object) -> str:
    if not isinstance(card, dict):
        return "—"
    score = "—" if card["score"] is None else f"{Decimal(card['score']):.1f}"
    return f"{score} (bonus {card['bonus']})"


@contextmanager
def _query(entity: str, period: str, now: str | None) -> Iterator[FigureQuery]:
    """Resolve entity and period against the configured database; bad input exits with 2."""
    from bot.queries import resolve
    from kpi_engine.periods import PeriodError
    from kpi_engine.scopes import ScopeError

    with _database() as (organisation, engine):
        try:
            yield resolve(engine, organisation, entity, period, now=_moment_of(now))
        except (ScopeError, PeriodError) as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None


@contextmanager
def _database() -> Iterator[tuple[Organisation, Engine]]:
    """The checked organisation and an engine on a schema at head (disposed afterwards)."""
    from kpi_engine.db import ensure_schema, make_engine

    settings = _settings()
    organisation = _organisation(settings)
    if settings.auto_migrate:
        ensure_schema(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        yield organisation, engine
    finally:
        engine.dispose()


@app.command("demo")
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Workspace folder")] = Path(
        "kpibot-demo"
    ),
    reset: Annotated[bool, typer.Option(help="Delete and recreate an existing workspace")] = False,
    generate_only: Annotated[
        bool, typer.Option("--generate-only", help="Only write CSV files (for benchmarks)")
    ] = False,
    scale: Annotated[str, typer.Option(help="small or large (with --generate-only)")] = "small",
    out: Annotated[Path | None, typer.Option(help="Output folder for --generate-only")] = None,
    days: Annotated[
        int, typer.Option(min=1, help="Days of data, up to now (--generate-only: whole days)")
    ] = 90,
    seed: Annotated[int, typer.Option(help="Random seed")] = 42,
    chat: Annotated[
        bool, typer.Option(help="End in the console chat (when run in a terminal)")
    ] = True,
    now: NowOption = None,
    template: Annotated[
        str | None,
        typer.Option(
            help="Build the workspace from a template (tiktok-live-team, amazon-jp-team, "
            "shopee-sea-team) instead of the example organisation"
        ),
    ] = None,
) -> None:
    """Create a demo workspace (config, SQLite, 90 days of data), then chat with it."""
    from bot.demo import create_workspace, generate_files

    moment = _moment_of(now)

    if scale not in ("small", "large"):
        typer.echo("--scale must be small or large", err=True)
        raise typer.Exit(2)
    chosen: Literal["small", "large"] = "small" if scale == "small" else "large"
    if generate_only:
        generate_files(
            out or Path(f"kpibot-data-{scale}"), chosen, days, seed, moment("UTC"), typer.echo
        )
        return
    if scale != "small":
        typer.echo("--scale applies to --generate-only; the demo workspace is small", err=True)
        raise typer.Exit(2)
    try:
        workspace = create_workspace(
            directory,
            reset=reset,
            days=days,
            seed=seed,
            now=moment,
            echo=typer.echo,
            template=template,
        )
    except ValueError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    if chat and sys.stdin.isatty():
        # The demo ends in the console chat, as the first streamer, on the workspace just made.
        from bot.console import ConsoleChat
        from kpi_engine.clock import fixed_clock
        from kpi_engine.db import make_engine
        from kpi_engine.organisation import load_organisation

        organisation = load_organisation(workspace / "config")
        engine = make_engine(f"sqlite:///{workspace / 'kpibot.db'}")
        person = next(p.id for p in organisation.people.values() if p.role == "streamer")
        typer.echo(f"\nChatting as {organisation.people[person].name} ({person}):")
        clock = fixed_clock(moment(_person_zone(organisation, person)))
        try:
            session = ConsoleChat(organisation, engine, person, write=typer.echo, clock=clock)
            _chat_loop(session, organisation, person)
        finally:
            engine.dispose()


def _console(
    person: str,
    channel: str | None,
    engine: Engine,
    organisation: Organisation,
    write: Callable[[str], None],
    now: str | None,
) -> ConsoleChat:
    from bot.console import ConsoleChat
    from kpi_engine.clock import fixed_clock

    clock = fixed_clock(_moment_of(now)(_person_zone(organisation, person)))
    try:
        return ConsoleChat(organisation, engine, person, channel=channel, write=write, clock=clock)
    except KeyError:
        typer.echo(f"Unknown person {person!r} (see people.yaml)", err=True)
        raise typer.Exit(2) from None
    except LookupError:
        typer.echo(f"Unknown team {channel!r} for --channel", err=True)
        raise typer.Exit(2) from None


AsOption = Annotated[str, typer.Option("--as", help="The person id to speak as")]
ChannelOption = Annotated[
    str | None,
    typer.Option("--channel", help="Speak in this team's group channel (default: a direct chat)"),
]


@app.command("ask")
def ask(
    text: Annotated[str, typer.Argument(help="What to ask, in Chinese or English")],
    person: AsOption,
    channel: ChannelOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reply as JSON")] = False,
    now: NowOption = None,
) -> None:
    """Ask the bot one question through the chat pipeline, as a person (for scripts)."""
    from bot.chat.messages import to_json

    with _database() as (organisation, engine):
        chat = _console(
            person,
            channel,
            engine,
            organisation,
            typer.echo if not as_json else lambda _: None,
            now,
        )
        chat.say(text)
        if as_json:
            routed = chat.last
            assert routed is not None
            mine = routed.result.reply  # the answer to the asker, whatever else was sent
            payload: dict[str, object] = {"private": routed.visibility == "private"}
            if mine is not None:
                payload |= to_json(mine)
            if routed.request is not None:
                payload["understood"] = routed.understood()
            typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))


@app.command("chat")
def chat(person: AsOption, channel: ChannelOption = None, now: NowOption = None) -> None:
    """Chat with the bot in this terminal, as a person; a number presses a button."""
    with _database() as (organisation, engine):
        _chat_loop(
            _console(person, channel, engine, organisation, typer.echo, now), organisation, person
        )


def _chat_loop(session: ConsoleChat, organisation: Organisation, person: str) -> None:
    from bot.i18n import texts

    language = organisation.language_of(organisation.people[person])
    typer.echo(texts(language)("ops.console_prompt"))
    session.run(_stdin_lines(), prompt=lambda: typer.echo("> ", nl=False))


def _stdin_lines() -> Iterator[str]:
    yield from sys.stdin


def _bot(organisation: Organisation, engine: Engine, now: int) -> Bot:
    """The chat side with no platform connected, on a pinned clock (digests, schedules)."""
    from bot.compose import compose
    from bot.runtime import Runtime
    from kpi_engine.clock import fixed_clock

    return compose(Runtime(_settings(), engine, organisation, fixed_clock(now)), {})


def _local(instant: int, timezone: str) -> str:
    from kpi_engine.instants import zone

    return datetime.fromtimestamp(instant, zone(timezone)).strftime("%a %Y-%m-%d %H:%M %Z")


@schedule_app.command("list")
def schedule_list(
    count: Annotated[int, typer.Option(help="Firings to show per job")] = 2,
    now: NowOption = None,
) -> None:
    """Each job's next firings, in its team's local time (jitter included)."""
    from bot.runtime import company_zone

    with _database() as (organisation, engine):
        moment = _moment_of(now)(company_zone(organisation))
        scheduler = _bot(organisation, engine, moment).scheduler
        upcoming = scheduler.next_firings(moment, count)
        for job in scheduler.jobs.values():
            when = ", ".join(_local(t, job.timezone) for t in upcoming[job.id]) or "never"
            typer.echo(f"{job.id:<28} {when}")


@schedule_app.command("runs")
def schedule_runs(
    job: Annotated[str | None, typer.Option(help="Only this job, e.g. morning:sz-live")] = None,
    limit: Annotated[int, typer.Option(help="How many runs")] = 20,
) -> None:
    """The run ledger: each firing, once, with what it did."""
    with _database() as (organisation, engine):
        scheduler = _bot(organisation, engine, _moment_of(None)("UTC")).scheduler
        rows = scheduler.ledger(job, limit)
        if not rows:
            typer.echo("No runs yet.")
        for row in rows:
            found = scheduler.jobs.get(row["job"])
            tz = found.timezone if found else "UTC"
            mark = " (delayed)" if row["delayed"] else ""
            detail = (row["detail"] or "").strip().splitlines()
            typer.echo(
                f"{row['job']:<28} {_local(row['scheduled_for'], tz)}  {row['state']}{mark}"
                f"  {detail[-1] if detail else ''}"
            )


@app.command("digest")
def digest(
    team: Annotated[str, typer.Option("--team", help="The team id")],
    kind: Annotated[
        Literal["morning", "evening", "weekly"], typer.Option(help="Which digest")
    ] = "morning",
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            "--at",
            help="As if sent at this moment (e.g. 2026-11-23T09:00, the team's local time); "
            "default KPIBOT_NOW, else the clock",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Render to the terminal and send nothing")
    ] = False,
    chart: Annotated[
        Path | None, typer.Option(help="Also write the chart PNG here (with --dry-run)")
    ] = None,
) -> None:
    """Show a team's digest as it would be posted (only --dry-run: the scheduler sends)."""
    from adapters.console import render_text

    if not dry_run:
        typer.echo("Digests are sent by the scheduler in `kpibot serve`; use --dry-run.", err=True)
        raise typer.Exit(2)
    with _database() as (organisation, engine):
        if team not in organisation.teams:
            known = ", ".join(organisation.teams)
            typer.echo(f"Unknown team {team!r}; teams: {known}", err=True)
            raise typer.Exit(2)
        moment = _moment_of(now)(organisation.teams[team].timezone)
        bot = _bot(organisation, engine, moment)
        job = bot.scheduler.jobs.get(f"{kind}:{team}")
        if job is None:
            typer.echo(f"Team {team!r} has no {kind} digest scheduled.", err=True)
            raise typer.Exit(2)
        posts = bot.service("digests").posts(job, moment)
        for post in posts:
            where = (
                f"→ {organisation.people[post.person].name} (private)"
                if post.person
                else f"→ {organisation.teams[team].name} channel"
            )
            typer.echo(f"\n{where}\n{render_text(post.reply)}")
        first = posts[0].reply.chart if posts else None
        if chart is not None and first is not None:
            chart.write_bytes(first.png)
            typer.echo(f"\nChart written to {chart} ({len(first.png):,} bytes).")


@outbox_app.callback()
def outbox(
    ctx: typer.Context,
    show: Annotated[
        str, typer.Option(help="States to list, comma-separated")
    ] = "pending,sending,dead",
) -> None:
    """List the outbox: counts by state, then the messages in the chosen states."""
    if ctx.invoked_subcommand is not None:
        return
    from bot.outbox import STATES, Outbox

    states = [s.strip() for s in show.split(",") if s.strip()]
    if not set(states) <= set(STATES):
        typer.echo(f"--show takes {', '.join(STATES)}", err=True)
        raise typer.Exit(2)
    with _database() as (_organisation, engine):
        box = Outbox(engine)
        counts = box.counts()
        typer.echo("  ".join(f"{state} {counts.get(state, 0)}" for state in STATES))
        for entry in box.entries(states):
            text = entry.text.splitlines()[0][:50] if entry.text else ""
            typer.echo(
                f"#{entry.id:<6} {entry.state:<8} {entry.kind:<8} {entry.platform}:{entry.channel}"
                f"  tries {entry.attempts}  {text}"
            )
            if entry.error:
                typer.echo(f"        {entry.error}")


@outbox_app.command("retry")
def outbox_retry(message: Annotated[int, typer.Argument(help="The outbox id")]) -> None:
    """Send a dead-lettered (or waiting) message again, now."""
    from bot.outbox import Outbox
    from kpi_engine.clock import system_clock

    with _database() as (_organisation, engine):
        if not Outbox(engine, clock=system_clock).retry(message, actor="cli"):
            typer.echo(f"Outbox #{message} is not dead, waiting or dropped.", err=True)
            raise typer.Exit(1)
        typer.echo(f"Outbox #{message} will be sent again by the running bot.")


@outbox_app.command("drop")
def outbox_drop(message: Annotated[int, typer.Argument(help="The outbox id")]) -> None:
    """Give up on a dead-lettered or waiting message."""
    from bot.outbox import Outbox
    from kpi_engine.clock import system_clock

    with _database() as (_organisation, engine):
        if not Outbox(engine, clock=system_clock).drop(message, actor="cli"):
            typer.echo(f"Outbox #{message} is not dead or waiting.", err=True)
            raise typer.Exit(1)
        typer.echo(f"Outbox #{message} dropped.")


@app.command("alerts")
def alerts() -> None:
    """Open alerts, and per rule how many alerts were marked "not a problem"."""
    from kpi_engine.alerts import AlertStore

    with _database() as (organisation, engine):
        store = AlertStore(engine)
        found = store.open_alerts()
        typer.echo(f"{len(found)} open")
        for alert in found:
            typer.echo(
                f"#{alert.id:<5} {alert.state:<12} {alert.rule:<24} {alert.scope:<20} "
                f"{alert.metric} {alert.value if alert.value is not None else '—'}  "
                f"level {alert.level}  {alert.period_key}"
            )
        rates = store.false_alarm_rates()
        typer.echo("\nrule                      alerts  not a problem  false-alarm rate")
        for rule in organisation.alerts:
            marked, total = rates.get(rule.id, (0, 0))
            rate = f"{marked / total:.0%}" if total else "—"
            typer.echo(f"{rule.id:<25} {total:>6}  {marked:>13}  {rate:>16}")


@app.command("audit")
def audit(
    kind: Annotated[
        list[str] | None,
        typer.Option(help="alert, appeal, correction, outbox, config, access, apikey"),
    ] = None,
    person: Annotated[str | None, typer.Option(help="Who acted, or whom it concerns")] = None,
    id: Annotated[str | None, typer.Option("--id", help="An alert, appeal, outbox… id")] = None,
    since: Annotated[str | None, typer.Option(help="From this moment (2026-11-20T00:00)")] = None,
    until: Annotated[str | None, typer.Option(help="Before this moment")] = None,
    limit: Annotated[int, typer.Option(min=1, help="The newest N entries")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines' array")] = False,
) -> None:
    """The audit trails: alerts, appeals, corrections, deliveries, configuration changes."""
    from bot.runtime import company_zone
    from kpi_engine.audit import kinds_of, trail
    from kpi_engine.instants import zone

    try:
        kinds = kinds_of(kind or [])
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    with _database() as (organisation, engine):
        tz = company_zone(organisation)
        bounds = [None if t is None else _moment_of(t)(tz) for t in (since, until)]
        entries = trail(
            engine,
            kinds=kinds or None,
            person=person,
            id=id,
            since=bounds[0],
            until=bounds[1],
            limit=limit,
        )
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in entries], ensure_ascii=False, indent=2))
        return
    if not entries:
        typer.echo("Nothing recorded that matches.")
    for entry in entries:
        when = datetime.fromtimestamp(entry.at, zone(tz)).strftime("%Y-%m-%d %H:%M:%S")
        about = f" ({entry.person})" if entry.person and entry.person != entry.actor else ""
        typer.echo(
            f"{when}  {entry.kind} #{entry.id:<6} {entry.action:<14} by {entry.actor}{about}"
            + (f"  {entry.detail}" if entry.detail else "")
        )


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Argument(help="What the key is for, e.g. bi-dashboard")],
    scope: Annotated[
        list[str],
        typer.Option(help="import, read:company, read:team:<id> or admin (repeatable)"),
    ],
) -> None:
    """Create a named, scoped API key; it is shown once (only its hash is kept)."""
    from kpi_engine import apikeys

    with _database() as (organisation, engine):
        try:
            scopes = apikeys.check_scopes(scope, organisation)
            key = apikeys.create(engine, name, scopes, actor="cli", now=_moment_of(None)("UTC"))
        except apikeys.ApiKeyError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
    typer.echo(key)
    typer.echo(
        f"Key {name!r} ({', '.join(sorted(scopes))}): keep it now, it is not shown again.", err=True
    )


@apikey_app.command("list")
def apikey_list() -> None:
    """Every key: name, scopes, created, last used, revoked."""
    from bot.runtime import company_zone
    from kpi_engine import apikeys

    with _database() as (organisation, engine):
        tz = company_zone(organisation)
        for key in apikeys.listing(engine):

            def at(value: int | None) -> str:
                return "—" if value is None else _local(value, tz)

            state = f"revoked {at(key.revoked_at)}" if key.revoked_at else "active"
            typer.echo(
                f"{key.name:<24} {','.join(key.scopes):<32} created {at(key.created_at)}"
                f" by {key.created_by}  last used {at(key.last_used_at)}  {state}"
            )


@apikey_app.command("revoke")
def apikey_revoke(name: Annotated[str, typer.Argument(help="The key's name")]) -> None:
    """Revoke a key at once (make a new one with the same name to rotate it)."""
    from kpi_engine import apikeys

    with _database() as (_organisation, engine):
        if not apikeys.revoke(engine, name, actor="cli", now=_moment_of(None)("UTC")):
            typer.echo(f"No active key named {name!r}.", err=True)
            raise typer.Exit(1)
    typer.echo(f"Key {name!r} revoked.")


# asyncio's own event loop, not uvloop: libuv (since 1.45) accepts one new connection per
# turn of its loop, so a burst of 64 new connections waits behind 64 turns of the requests in
# flight, 0.3-0.5 s on a busy web process; asyncio accepts all that are waiting at once
# (ARCHITECTURE.md, "Scale-out"; bench/README.md, "Webhooks").
SERVE_LOOP = "asyncio"


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=0,
            help="Start N `kpibot worker` processes to answer chat messages; this process "
            "then only verifies, records and acknowledges them",
        ),
    ] = 0,
) -> None:
    """Run the HTTP server (import API, health, and chat webhooks as they are enabled)."""
    import os

    import uvicorn

    from bot.app import create_app

    if workers:
        os.environ["KPIBOT_CHAT_QUEUE"] = "1"  # this process and its workers
    settings = _settings()
    _organisation(settings)
    if workers:
        import signal

        # uvicorn shuts down on SIGTERM and then raises the signal again, with the handler it
        # found: this one, so that the workers are stopped (below) before this process exits.
        def stop(signum: int, _frame: object) -> None:
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, stop)
    application = create_app(settings)
    _freeze_heap()
    with _worker_processes(workers):
        uvicorn.run(
            application,
            host=host,
            port=port,
            log_level=settings.log_level.lower(),
            loop=SERVE_LOOP,
        )


def _freeze_heap() -> None:
    """Leave what start-up built (modules, the organisation, the app) out of the garbage
    collector's full passes: they would otherwise walk it all every so often, stalling every
    request in flight for 0.1–0.2 s (bench/README.md, "Webhooks")."""
    import gc

    gc.collect()
    gc.freeze()


@contextmanager
def _worker_processes(count: int) -> Iterator[None]:
    """`count` `kpibot worker` processes for as long as the block runs, each restarted if it
    dies (its claimed deliveries go to the others when their lease runs out)."""
    import subprocess
    import threading

    if not count:
        yield
        return
    import os

    command = [sys.executable, "-c", "from bot.cli import main; main()", "worker"]
    # A worker whose `serve` is gone (killed with -9) stops by itself: it watches this pid.
    env = {**os.environ, "KPIBOT_WORKER_OF": str(os.getpid())}
    processes = [subprocess.Popen(command, env=env) for _ in range(count)]
    stopping = threading.Event()

    def watch() -> None:
        while not stopping.wait(1.0):
            for n, process in enumerate(processes):
                if process.poll() is not None and not stopping.is_set():
                    typer.echo(f"worker {process.pid} exited ({process.returncode}); restarted")
                    processes[n] = subprocess.Popen(command, env=env)

    watcher = threading.Thread(target=watch, name="worker-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stopping.set()
        watcher.join()
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@app.command("worker")
def worker(
    poll: Annotated[
        float, typer.Option(help="Seconds between looks for deliveries whose lease ran out")
    ] = 5.0,
) -> None:
    """Answer recorded chat messages and button clicks (beside `kpibot serve` with
    KPIBOT_CHAT_QUEUE=1, or started by `kpibot serve --workers N`): woken by PostgreSQL
    notifications (on SQLite within a tenth of a second), several workers never answer the
    same delivery, and one killed mid-answer leaves it to another. Stops on SIGTERM or Ctrl-C
    after the answer in hand."""
    import os
    import signal
    import threading

    from adapters import connect_platforms
    from bot.app import build_chat
    from bot.runtime import build_runtime

    settings = _settings()
    _organisation(settings)
    runtime = build_runtime(settings)
    chat, _ = build_chat(runtime, connect_platforms(settings))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    parent = os.environ.get("KPIBOT_WORKER_OF")
    if parent:  # started by `kpibot serve --workers`: stop when it is gone
        # Acknowledging is what has a deadline (Slack's 3 s); answering can wait its turn. On
        # a machine whose cores are busy the web process goes first.
        os.nice(10)

        def watch() -> None:
            while not stop.wait(1.0):
                if os.getppid() != int(parent):
                    stop.set()

        threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    chat.start(scheduler=False)  # its sender retries what it stored and could not send
    try:
        chat.pipeline.run_worker(stop, poll=poll)
    finally:
        chat.stop()
        runtime.engine.dispose()


def main() -> None:
    """Console-script entry point."""
    app()


from bot.shop_cli import register  # noqa: E402  (shop connectors: connect, sync)

register(app)
