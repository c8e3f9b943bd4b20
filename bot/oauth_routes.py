"""The platforms' OAuth callbacks: `/oauth/<platform>/callback` checks `state` and stores the
shop's tokens (encrypted)."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from connectors.errors import ConnectorError
from connectors.settings import ConnectorSettings

router = APIRouter()


def _page(status: int, title: str, text: str) -> HTMLResponse:
    body = f"<!doctype html><meta charset=utf-8><title>{escape(title)}</title><p>{escape(text)}"
    return HTMLResponse(body, status_code=status)


@router.get("/oauth/{platform}/callback")
def oauth_callback(platform: str, request: Request) -> HTMLResponse:
    """The seller comes back from the platform with a code: connect the shop."""
    sync = getattr(request.app.state, "shop_sync", None)
    if sync is None or platform not in sync.connectors:
        return _page(404, "Not configured", f"{platform} is not configured on this kpibot.")
    params = dict(request.query_params.items())
    code = params.get("code") or params.get("spapi_oauth_code") or ""
    shop_id = sync.store.pending(params.get("state", ""), platform, int(sync.clock.now()))
    if shop_id is None or not code:
        return _page(
            400,
            "Unknown or expired link",
            "This authorization link is unknown or expired; run `kpibot connect` again.",
        )
    redirect = ConnectorSettings().redirect_uri(platform)
    try:
        sync.complete(platform, shop_id, code, params, redirect)
    except ConnectorError as exc:
        return _page(502, "Authorization failed", f"{platform} refused the authorization: {exc}")
    return _page(200, "Connected", f"Shop {shop_id} is connected; its data syncs from now on.")
