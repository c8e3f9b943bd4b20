"""`kpibot connect`, `kpibot sync status|run` and `kpibot import orders --from <export>`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

connect_app = typer.Typer(help="Connect a shop to kpibot through its platform's API.")
sync_app = typer.Typer(
    help="The shops' scheduled sync: state, and runs by hand.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add `connect` and `sync` to the kpibot command."""
    app.command("connect")(connect)
    app.add_typer(sync_app, name="sync")


@contextmanager
def _sync() -> Iterator[object]:
    from bot.cli import _database, _settings
    from bot.runtime import clock_of
    from connectors.clock import SystemClock
    from connectors.registry import build_sync
    from connectors.settings import ConnectorSettings
    from connectors.tokens import SecretKeyMissing

    settings = ConnectorSettings()
    with _database() as (organisation, engine):
        # The one clock: KPIBOT_NOW pins where it starts (a sync runs on from there).
        clock = SystemClock(clock_of(_settings(), organisation, running=True))
        try:
            yield build_sync(engine, organisation, settings, clock)
        except SecretKeyMissing as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None


def _stamp(instant: int | None) -> str:
    if instant is None:
        return "—"
    return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%d %H:%M UTC")


def connect(
    platform: Annotated[str, typer.Argument(help="tiktok, amazon or shopee")],
    shop: Annotated[str, typer.Option("--shop", help="The shop id from the config")],
    code: Annotated[
        str | None, typer.Option(help="Exchange this authorization code by hand")
    ] = None,
    platform_shop_id: Annotated[
        str | None,
        typer.Option("--platform-shop-id", help="Shopee's shop_id from the callback (with --code)"),
    ] = None,
    refresh_token: Annotated[
        str | None,
        typer.Option("--refresh-token", help="Amazon private app: the self-authorised token"),
    ] = None,
    every: Annotated[int | None, typer.Option(min=1, help="Sync every N minutes")] = None,
) -> None:
    """Print the platform's authorization URL for a shop (or finish with --code)."""
    from connectors.errors import ConnectorError
    from connectors.settings import ConnectorSettings
    from connectors.sync import SyncService

    settings = ConnectorSettings()
    with _sync() as found:
        sync: SyncService = found  # type: ignore[assignment]
        if platform not in sync.connectors:
            typer.echo(
                f"{platform} is not configured (set its app credentials, see README).", err=True
            )
            raise typer.Exit(2)
        if shop not in sync.organisation.shops:
            typer.echo(f"Unknown shop {shop!r} (see shops.yaml)", err=True)
            raise typer.Exit(2)
        redirect = settings.redirect_uri(platform)
        try:
            if refresh_token is not None and platform == "amazon":
                from connectors.amazon import AmazonConnector

                amazon = sync.connectors["amazon"]
                assert isinstance(amazon, AmazonConnector)
                now = int(sync.clock.now())
                grant = amazon.from_refresh_token(refresh_token, now)
                sync.store.activate(shop, platform, grant, now, every_minutes=every)
            elif code is not None:
                params = {"shop_id": platform_shop_id} if platform_shop_id else {}
                sync.complete(platform, shop, code, params, redirect, every_minutes=every)
            else:
                url = sync.authorize(platform, shop, redirect, every_minutes=every)
                typer.echo(f"Open this link as the shop's owner to authorise kpibot:\n\n{url}\n")
                typer.echo(f"The platform then sends them to {redirect} (kpibot serve).")
                return
        except ConnectorError as exc:
            typer.echo(f"{platform} refused: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"Shop {shop} is connected; `kpibot sync run --shop {shop}` syncs it now.")


@sync_app.command("status")
def sync_status(
    shop: Annotated[str | None, typer.Option("--shop", help="Only this shop")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Per shop and source: connection, last success, high-water mark, rows and errors."""
    from connectors.sync import SyncService
    from kpi_engine.freshness import shop_freshness

    with _sync() as found:
        sync: SyncService = found  # type: ignore[assignment]
        connections = {c.shop_id: c for c in sync.store.all()}
        entries = shop_freshness(sync.engine, shop)
    if as_json:
        payload = [
            {**vars(e), "state": connections[e.shop_id].state if e.shop_id in connections else None}
            for e in entries
        ]
        typer.echo(json.dumps(payload, indent=2))
        return
    for shop_id, connection in connections.items():
        if shop is not None and shop_id != shop:
            continue
        typer.echo(
            f"{shop_id:<12} {connection.platform:<7} {connection.state}"
            f"{' — ' + connection.revoked_reason if connection.revoked_reason else ''}"
            f"  every {connection.every_minutes} min"
        )
        for entry in (e for e in entries if e.shop_id == shop_id):
            error = f"  errors {entry.errors}: {entry.last_error}" if entry.errors else ""
            typer.echo(
                f"  {entry.source:<8} last success {_stamp(entry.last_success)}"
                f"  data to {_stamp(entry.high_water)}  rows {entry.rows:,}{error}"
            )
    if not connections:
        typer.echo("No shop is connected; see `kpibot connect --help`.")


@sync_app.command("run")
def sync_run(
    shop: Annotated[str, typer.Option("--shop", help="The shop id")],
    since: Annotated[
        str | None, typer.Option(help="Read everything updated since this date (YYYY-MM-DD, UTC)")
    ] = None,
) -> None:
    """Sync a shop now: catch up, or backfill from --since."""
    from connectors.sync import SyncService
    from kpi_engine.clock import system_clock

    with _sync() as found:
        sync: SyncService = found  # type: ignore[assignment]
        if sync.store.get(shop) is None:
            typer.echo(f"Shop {shop} is not connected (kpibot connect).", err=True)
            raise typer.Exit(2)
        if since is not None:
            start = int(datetime.fromisoformat(since).replace(tzinfo=UTC).timestamp())
            outcomes = sync.backfill(shop, start)
        else:
            connection = sync.store.get(shop)
            assert connection is not None
            now = int(system_clock())
            outcomes = [
                sync.sync(shop, source, now)
                for source in sync.connectors[connection.platform].sources
            ]
    for outcome in outcomes:
        typer.echo(
            f"{outcome.shop_id}/{outcome.source}: {outcome.state}, {outcome.pages} pages, "
            f"{outcome.rows} rows ({outcome.inserted} new, {outcome.revised} revised)"
            f"{'  ' + outcome.error if outcome.error else ''}"
        )
    if any(o.state in ("failed", "revoked") for o in outcomes):
        raise typer.Exit(1)


def import_export(kind: str, files: list[Path], fmt: str, shop: str | None, as_json: bool) -> None:
    """`kpibot import orders --from FORMAT --shop S FILE…`: a seller-centre export as it is."""
    from bot.cli import _database
    from kpi_engine.clock import system_clock
    from kpi_engine.ingest.exports import EXPORTS, ExportError, read_export
    from kpi_engine.ingest.formats import KINDS
    from kpi_engine.ingest.importer import import_rows

    if fmt not in EXPORTS:
        typer.echo(f"Unknown --from {fmt!r}; formats: {', '.join(EXPORTS)}", err=True)
        raise typer.Exit(2)
    if kind != "orders":
        typer.echo(
            "--from imports orders (and their refunds): use `kpibot import orders`", err=True
        )
        raise typer.Exit(2)
    if shop is None:
        typer.echo("--from needs --shop: the export files do not name the shop", err=True)
        raise typer.Exit(2)
    reports = []
    failed = False
    with _database() as (organisation, engine):
        if shop not in organisation.shops:
            typer.echo(f"Unknown shop {shop!r} (see shops.yaml)", err=True)
            raise typer.Exit(2)
        for path in files:
            try:
                sources = read_export(path, fmt, organisation.shops[shop])
            except ExportError as exc:
                typer.echo(f"{path.name}: {exc}", err=True)
                failed = True
                continue
            for target, source in sources.items():
                now = int(system_clock())
                reports.append(import_rows(engine, organisation, KINDS[target], source, now=now))
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in reports], ensure_ascii=False, indent=2))
    else:
        for report in reports:
            typer.echo(report.render(), err=not report.ok)
    if failed or not all(r.ok for r in reports):
        raise typer.Exit(1)
