"""HTTP API routes: data import (and, later, metrics), authenticated with KPIBOT_API_KEY."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from bot.runtime import Runtime
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_rows
from kpi_engine.ingest.readers import RowSource, SourceError, read_csv_text, read_json_text


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]


def require_api_key(
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> None:
    """Accept `Authorization: Bearer <key>` or `X-API-Key: <key>`; anything else is 401."""
    expected = runtime.settings.api_key
    if expected is None:
        raise HTTPException(401, "the API is disabled: set KPIBOT_API_KEY on the server")
    given = x_api_key
    if given is None and authorization and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    if given is None:
        raise HTTPException(
            401,
            "missing API key (Authorization: Bearer <key> or X-API-Key)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise HTTPException(401, "wrong API key", headers={"WWW-Authenticate": "Bearer"})


router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_api_key)])


@router.post("/import/{kind}")
async def import_data(
    kind: str, request: Request, runtime: RuntimeDep, name: str = "api"
) -> JSONResponse:
    """Import a JSON array of objects or a CSV body as `kind`; 422 lists every bad row."""
    spec = KINDS.get(kind)
    if spec is None:
        raise HTTPException(404, f"unknown import kind {kind!r}; kinds: {', '.join(KINDS)}")
    try:
        body = (await request.body()).decode("utf-8")
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
