"""HTTP API routes: data import (and, later, metrics), authenticated with KPIBOT_API_KEY."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from bot.chat.adapter import read_body
from bot.runtime import Runtime
from kpi_engine import apikeys
from kpi_engine.apikeys import Caller
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_rows
from kpi_engine.ingest.readers import RowSource, SourceError, read_csv_text, read_json_text
from kpi_engine.scopes import Scope


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]


_BOOTSTRAP = Caller("KPIBOT_API_KEY", frozenset({"admin"}))
log = logging.getLogger(__name__)


def require_api_key(
    request: Request,
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Caller:
    """The caller of a valid key (`Authorization: Bearer <key>` or `X-API-Key: <key>`): a key
    made with `kpibot apikey create` (named, scoped), or the bootstrap `KPIBOT_API_KEY`
    (admin). Anything else is 401; every use is audited."""
    given = x_api_key
    if given is None and authorization and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    if given is None:
        raise HTTPException(
            401,
            "missing API key (Authorization: Bearer <key> or X-API-Key)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    caller = apikeys.verify(runtime.engine, given)
    bootstrap = runtime.settings.api_key
    secret = bootstrap.get_secret_value().encode() if bootstrap is not None else None
    if caller is None and secret and hmac.compare_digest(given.encode(), secret):
        caller = _BOOTSTRAP
    if caller is None:
        log.warning("API request with an invalid key refused: %s", request.url.path)
        raise HTTPException(
            401,
            "wrong API key (an admin makes keys with `kpibot apikey create`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    apikeys.used(
        runtime.engine, caller, f"{request.method} {request.url.path}", now=int(runtime.clock())
    )
    return caller


CallerDep = Annotated[Caller, Depends(require_api_key)]


def may_read(runtime: Runtime, caller: Caller, scope: Scope) -> None:
    """403 unless the key's scopes cover reading `scope`'s figures."""
    if not caller.may_read(runtime.organisation, scope):
        raise HTTPException(403, "this API key may not read these figures")


router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_api_key)])


@router.post("/import/{kind}")
async def import_data(
    kind: str, request: Request, runtime: RuntimeDep, caller: CallerDep, name: str = "api"
) -> JSONResponse:
    """Import a JSON array of objects or a CSV body as `kind`; 422 lists every bad row."""
    if not caller.may("import"):
        raise HTTPException(403, "this API key may not import data")
    spec = KINDS.get(kind)
    if spec is None:
        raise HTTPException(404, f"unknown import kind {kind!r}; kinds: {', '.join(KINDS)}")
    limit = runtime.settings.import_max_bytes
    raw = await read_body(request, limit)
    if raw is None:
        log.warning("refused an import: larger than %d bytes", limit)
        raise HTTPException(413, f"the body is larger than {limit} bytes (KPIBOT_IMPORT_MAX_BYTES)")
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(400, "the body is not UTF-8 text") from None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        source: RowSource = (
            read_json_text(body, name)
            if content_type.endswith("json")
            else read_csv_text(body, name)
        )
    except SourceError as exc:
        where = f" (line {exc.line})" if exc.line else ""
        raise HTTPException(400, f"{name}{where}: {exc}") from None
    report = await run_in_threadpool(
        import_rows, runtime.engine, runtime.organisation, spec, source
    )
    payload: dict[str, Any] = report.to_dict()
    return JSONResponse(payload, status_code=200 if report.ok else 422)
