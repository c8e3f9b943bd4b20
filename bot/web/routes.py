"""The dashboard's routes: sign-in by link, the pages, their chart data, and the actions.

Every page and fragment is computed for the signed-in person only: the session names them, the
access policy decides what they may see, and anything they may not see is a 404 that says
nothing (the same page as an id that does not exist). Actions are POSTs with the session's
CSRF token; they call the services chat calls (`AlertService.act`, `AppealService.decide`,
`Outbox.retry`/`drop`, `annotations.add_note`), so the rules and the audit trail are the same.
After an action the browser is sent back to the page it came from (with htmx, in place).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from bot.features.dashboard.links import LinkRefused, read_link
from bot.i18n.format import moment
from bot.web.pages import PERIOD_KINDS, ROLES, Choice, Pages, Reader, choose_period, reader_of
from bot.web.security import (
    PREFIX,
    RateLimiter,
    client_of,
    csrf_ok,
    read_form,
    same_origin,
)
from kpi_engine.annotations import add_note
from kpi_engine.appeals import OPEN as APPEAL_OPEN
from kpi_engine.audit import KINDS as AUDIT_KINDS
from kpi_engine.audit import trail
from kpi_engine.instants import day_bounds, zone
from kpi_engine.periods import PeriodError, today
from kpi_engine.scopes import Scope
from kpi_engine.sessions import (
    Session,
    end_session,
    end_sessions,
    redeem,
    refused,
    session_of,
    use_of,
)

if TYPE_CHECKING:
    from bot.chat.notifier import Notifier
    from bot.features.alerts.service import AlertService
    from bot.features.appeals.service import AppealService
    from bot.outbox import Outbox
    from bot.runtime import Runtime

log = logging.getLogger(__name__)
COOKIE = "kpibot_session"
TEMPLATES = Path(__file__).parent / "templates"
# Messages shown after an action (the page it returns to names one of these).
NOTICES = (
    "alert.done",
    "alert.stale",
    "alert.snooze_invalid",
    "appeal.done",
    "appeal.stale",
    "appeal.reason_needed",
    "outbox.done",
    "outbox.stale",
    "note.done",
    "note.invalid",
)
SNOOZES = ("1h", "2h", "tomorrow")
OUTBOX_SHOWN = ("pending", "sending", "dead")


class SignInNeeded(Exception):
    """No open session: the sign-in hint is shown (401)."""


class Hidden(Exception):
    """Not there, or not for this reader: the same 404 either way."""


@dataclass(frozen=True)
class Viewer:
    """The signed-in person of a request and their session."""

    session_id: str
    session: Session
    reader: Reader


@dataclass
class Dashboard:
    """What the dashboard's routes work with (built once by `bot.web.mount`)."""

    runtime: Runtime
    pages: Pages
    templates: Jinja2Templates
    limiter: RateLimiter
    key: bytes | None
    alerts: AlertService | None = None
    appeals: AppealService | None = None
    outbox: Outbox | None = None
    notifier: Notifier | None = None  # carries out what an action sets in motion (card edits)

    def now(self) -> int:
        """The app's clock (a pinned moment replays the past exactly)."""
        return int(self.runtime.clock())

    @property
    def secure(self) -> bool:
        """Served over https: cookies are Secure."""
        return self.runtime.settings.public_url.startswith("https://")


def _dashboard(request: Request) -> Dashboard:
    found: Dashboard = request.app.state.dashboard
    return found


def viewer_of(request: Request) -> Viewer:
    """The signed-in person, or SignInNeeded."""
    dashboard = _dashboard(request)
    session_id = request.cookies.get(COOKIE, "")
    session = session_of(dashboard.runtime.engine, session_id, now=dashboard.now())
    person = dashboard.pages.organisation.people.get(session.person) if session else None
    if session is None or person is None:
        raise SignInNeeded()
    return Viewer(session_id, session, reader_of(dashboard.pages.organisation, person))


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    reader: Reader | None = None,
    viewer: Viewer | None = None,
    status: int = 200,
) -> HTMLResponse:
    """A template with what every page needs: the texts, the language, the navigation and the
    session's CSRF token."""
    dashboard = _dashboard(request)
    reader = viewer.reader if viewer else reader
    org = dashboard.pages.organisation
    language = reader.language if reader else org.settings.default_language
    base: dict[str, Any] = {
        "t": reader.t if reader else _default_texts(request),
        "language": language,
        "viewer": viewer,
        "nav": dashboard.pages.navigation(viewer.reader) if viewer else [],
        "csrf": viewer.session.csrf if viewer else "",
        "organisation": org.settings.name,
        "notice": _notice(request, reader),
    }
    return dashboard.templates.TemplateResponse(
        request, name, {**base, **context}, status_code=status
    )


def _default_texts(request: Request) -> Any:
    from bot.i18n import texts

    return texts(_dashboard(request).pages.organisation.settings.default_language)


def _notice(request: Request, reader: Reader | None) -> str | None:
    key = request.query_params.get("msg", "")
    if key not in NOTICES or reader is None:
        return None
    return reader.t(f"web.notice.{key}")


def _choice(request: Request, viewer: Viewer, scope: Scope, default: str = "month") -> Choice:
    dashboard = _dashboard(request)
    try:
        return choose_period(
            dict(request.query_params),
            now=dashboard.now(),
            timezone=dashboard.pages.figures.timezone(scope),
            week_start=dashboard.pages.organisation.settings.week_start,
            default=default,
        )
    except PeriodError as exc:
        raise BadPeriod(str(exc)) from None


class BadPeriod(Exception):
    """The picker's fields make no period (400, with the picker to try again)."""


def _picker(
    request: Request, choice: Choice, viewer: Viewer, *, keep: dict[str, str]
) -> dict[str, Any]:
    """The period picker: the kinds, the choice, and the previous and next periods."""
    t = viewer.reader.t
    dashboard = _dashboard(request)
    period = choice.period
    current = today(dashboard.now(), period.timezone)

    def href(params: dict[str, str]) -> str:
        return "?" + urlencode({**keep, **params})

    previous = next_ = None
    if choice.kind != "custom":
        previous = href({"p": choice.kind, "d": (period.first - timedelta(days=1)).isoformat()})
        if period.last < current:
            next_ = href({"p": choice.kind, "d": (period.last + timedelta(days=1)).isoformat()})
    from bot.web.pages import period_text

    return {
        "kinds": [
            {
                "key": kind,
                "label": t(f"web.period.{kind}"),
                "href": href({"p": kind}),
                "active": kind == choice.kind,
            }
            for kind in PERIOD_KINDS
            if kind != "custom"
        ],
        "kind": choice.kind,
        "anchor": choice.anchor.isoformat(),
        "first": period.first.isoformat(),
        "last": period.last.isoformat(),
        "text": period_text(period, viewer.reader),
        "label": period.label(),
        "timezone": period.timezone,
        "previous": previous,
        "next": next_,
        "keep": keep,
        "options": [
            {"key": kind, "label": t(f"web.period.{kind}"), "selected": kind == choice.kind}
            for kind in PERIOD_KINDS
        ],
    }


def _back(request: Request, form: dict[str, str], msg: str, anchor: str = "") -> RedirectResponse:
    """Back to the page the action came from (only our own pages), with its notice."""
    back = form.get("back", "")
    if not back.startswith(PREFIX + "/") or "//" in back or "\\" in back:
        back = PREFIX + "/me"
    separator = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{separator}msg={msg}{anchor}", status_code=303)


async def _action_form(request: Request, viewer: Viewer) -> dict[str, str]:
    """The action's form after the CSRF and origin checks (403 otherwise)."""
    dashboard = _dashboard(request)
    form = await read_form(request)
    given = request.headers.get("x-csrf-token") or form.get("csrf")
    if not same_origin(request, dashboard.runtime.settings.public_url) or not csrf_ok(
        viewer.session.csrf, given
    ):
        raise Forbidden()
    return form


class Forbidden(Exception):
    """An action without the session's CSRF token, or from another site (403)."""


# -- the routes -------------------------------------------------------------------------------


def build_router() -> APIRouter:
    """The dashboard's routes (the app's state holds the `Dashboard` they use)."""
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        """The server's address leads to the dashboard's sign-in hint."""
        return RedirectResponse(PREFIX + "/", status_code=307)

    @router.get(PREFIX, include_in_schema=False)
    @router.get(PREFIX + "/", include_in_schema=False)
    def home(request: Request) -> Response:
        """Signed in: your page. Otherwise: how to open the dashboard from chat."""
        try:
            viewer_of(request)
        except SignInNeeded:
            return render(request, "signin.html", {})
        return RedirectResponse(PREFIX + "/me", status_code=303)

    # -- signing in and out ------------------------------------------------------------

    def _limited(request: Request) -> Response | None:
        dashboard = _dashboard(request)
        wait = dashboard.limiter.check(client_of(request))
        if wait is None:
            return None
        log.warning("dashboard sign-in: too many attempts from %s", client_of(request))
        response = render(request, "message.html", {"key": "too_many"}, status=429)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response

    def _claim(request: Request, token: str) -> Any:
        dashboard = _dashboard(request)
        if dashboard.key is None:
            return render(request, "message.html", {"key": "unavailable"}, status=503)
        try:
            claim = read_link(dashboard.key, token, now=dashboard.now())
        except LinkRefused as refused:
            log.info("dashboard link refused (%s) from %s", refused.reason, client_of(request))
            key = "expired" if refused.reason == "expired" else "invalid"
            return render(request, "message.html", {"key": key}, status=400)
        if claim.person not in dashboard.pages.organisation.people:
            return render(request, "message.html", {"key": "invalid"}, status=400)
        return claim

    @router.get(PREFIX + "/login/{token}", include_in_schema=False)
    def login_page(request: Request, token: str) -> Response:
        """A link from chat: a page whose button (pressed by the page's script) redeems it.
        Opening it changes nothing, so a chat's link preview does not use it up."""
        limited = _limited(request)
        if limited is not None:
            return limited
        claim = _claim(request, token)
        if isinstance(claim, Response):
            return claim
        return render(request, "login.html", {"token": token})

    async def _posted_link(request: Request) -> tuple[dict[str, str], Any] | Response:
        """A link posted from its page (login or revoke): rate-limited, same origin, valid.
        The form and the link's claim, or the page that refuses it."""
        limited = _limited(request)
        if limited is not None:
            return limited
        form = await read_form(request)
        if not same_origin(request, _dashboard(request).runtime.settings.public_url):
            return render(request, "message.html", {"key": "invalid"}, status=403)
        claim = _claim(request, form.get("token", ""))
        if isinstance(claim, Response):
            return claim
        return form, claim

    @router.post(PREFIX + "/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        """Redeem a link once: open a session for its person (an HttpOnly, SameSite cookie)."""
        posted = await _posted_link(request)
        if isinstance(posted, Response):
            return posted
        form, claim = posted
        dashboard = _dashboard(request)
        now = dashboard.now()
        opened = redeem(
            dashboard.runtime.engine,
            claim.nonce,
            claim.person,
            link_expires_at=claim.expires_at,
            now=now,
            lifetime=dashboard.runtime.settings.dashboard_session_hours * 3600,
            client=client_of(request),
        )
        if opened is None:
            log.warning("dashboard link used again (%s) from %s", claim.person, client_of(request))
            engine = dashboard.runtime.engine
            refused(engine, claim.nonce, claim.person, now=now, client=client_of(request))
            return _used(request, claim, form.get("token", ""))
        response = RedirectResponse(PREFIX + "/me", status_code=303)
        response.set_cookie(
            COOKIE,
            opened.id,
            max_age=opened.session.expires_at - now,
            path=PREFIX,
            secure=dashboard.secure or request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )
        return response

    def _used(request: Request, claim: Any, token: str) -> Response:
        """A used link again: when and from where it was opened, and, since it may have been
        forwarded and opened first by someone else, a button that ends the person's sessions."""
        dashboard = _dashboard(request)
        org = dashboard.pages.organisation
        reader = reader_of(org, org.people[claim.person])  # in the link's person's language
        use = use_of(dashboard.runtime.engine, claim.nonce)
        detail = None
        if use is not None:
            timezone = dashboard.pages.figures.timezone(Scope("person", claim.person))
            detail = reader.t(
                "web.message.used.when",
                moment=moment(use.used_at, timezone, reader.language),
                client=use.client or "—",
            )
        context = {"key": "used", "detail": detail, "revoke": token}
        return render(request, "message.html", context, reader=reader, status=410)

    @router.post(PREFIX + "/login/revoke", include_in_schema=False)
    async def revoke(request: Request) -> Response:
        """With a link that was used: end every open session of its person (someone else may
        have opened it first)."""
        posted = await _posted_link(request)
        if isinstance(posted, Response):
            return posted
        _, claim = posted
        dashboard = _dashboard(request)
        engine = dashboard.runtime.engine
        if use_of(engine, claim.nonce) is None:  # an unused link opens, it does not revoke
            return render(request, "message.html", {"key": "invalid"}, status=400)
        ended = end_sessions(
            engine, claim.person, now=dashboard.now(), nonce=claim.nonce, client=client_of(request)
        )
        log.warning("dashboard sessions of %s ended with a used link (%d)", claim.person, ended)
        org = dashboard.pages.organisation
        reader = reader_of(org, org.people[claim.person])
        response = render(request, "message.html", {"key": "signed_out_everywhere"}, reader=reader)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    @router.post(PREFIX + "/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        """End the session here and now."""
        viewer = viewer_of(request)
        await _action_form(request, viewer)
        dashboard = _dashboard(request)
        end_session(dashboard.runtime.engine, viewer.session_id, now=dashboard.now())
        response = render(request, "message.html", {"key": "signed_out"}, reader=viewer.reader)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    # -- pages ------------------------------------------------------------------------

    def _person_context(request: Request, viewer: Viewer, person_id: str) -> dict[str, Any]:
        dashboard = _dashboard(request)
        pages = dashboard.pages
        org = pages.organisation
        if person_id not in org.people or not pages.may_see(
            viewer.reader, Scope("person", person_id)
        ):
            raise Hidden()
        scope = Scope("person", person_id)
        choice = _choice(request, viewer, scope)
        now = dashboard.now()
        page = pages.person_page(viewer.reader, person_id, choice, now=now)
        own = person_id == viewer.reader.person.id
        keep: dict[str, str] = {}
        return {
            **page,
            "own": own,
            "current": "me" if own else "",
            "picker": _picker(request, choice, viewer, keep=keep),
            "alerts": _alerts(request, viewer, lambda a: a.scope == f"person:{person_id}"),
            "appeals": _appeals(request, viewer, appellants=[person_id], states=None),
            "back": request.url.path,
        }

    @router.get(PREFIX + "/me", include_in_schema=False)
    def me(request: Request) -> Response:
        """The signed-in person's own page."""
        viewer = viewer_of(request)
        context = _person_context(request, viewer, viewer.reader.person.id)
        return render(request, "person.html", context, viewer=viewer)

    @router.get(PREFIX + "/people/{person_id}", include_in_schema=False)
    def person(request: Request, person_id: str) -> Response:
        """Someone's page, for those who may see their numbers (their managers, admins)."""
        viewer = viewer_of(request)
        context = _person_context(request, viewer, person_id)
        return render(request, "person.html", context, viewer=viewer)

    @router.get(PREFIX + "/people/{person_id}/series.json", include_in_schema=False)
    def person_series(request: Request, person_id: str) -> Response:
        """A person's daily GMV against target (the chart's data), under the same rules."""
        viewer = viewer_of(request)
        dashboard = _dashboard(request)
        pages = dashboard.pages
        scope = Scope("person", person_id)
        if person_id not in pages.organisation.people or not pages.may_see(viewer.reader, scope):
            raise Hidden()
        choice = _choice(request, viewer, scope)
        return JSONResponse(
            pages.daily_series(scope, choice.period, viewer.reader, now=dashboard.now())
        )

    def _team_scope(request: Request, viewer: Viewer, team_id: str) -> Scope:
        pages = _dashboard(request).pages
        scope = Scope("team", team_id)
        if team_id not in pages.organisation.teams or not pages.may_see(viewer.reader, scope):
            raise Hidden()
        return scope

    def _role(request: Request, viewer: Viewer) -> str:
        role = request.query_params.get("role", "")
        if role in ROLES:
            return role
        asker = viewer.reader.person.role
        return asker if asker not in ("manager", "admin") else "streamer"

    @router.get(PREFIX + "/teams/{team_id}", include_in_schema=False)
    def team(request: Request, team_id: str) -> Response:
        """A team's page, for its members (ranking as `ranking_for_members` allows), its
        managers and admins."""
        viewer = viewer_of(request)
        dashboard = _dashboard(request)
        scope = _team_scope(request, viewer, team_id)
        choice = _choice(request, viewer, scope)
        role = _role(request, viewer)
        page = dashboard.pages.team_page(viewer.reader, team_id, choice, role, now=dashboard.now())
        org = dashboard.pages.organisation

        def in_team(scope_text: str) -> bool:
            kind, _, ident = scope_text.partition(":")
            if kind == "person":
                return ident in org.people and org.people[ident].team == team_id
            if kind == "shop":
                return ident in org.shops and org.shops[ident].team == team_id
            return kind == "team" and ident == team_id

        members = [p.id for p in org.people.values() if p.team == team_id]
        context = {
            **page,
            "current": team_id,
            "picker": _picker(request, choice, viewer, keep={"role": role}),
            "alerts": _alerts(request, viewer, lambda a: in_team(a.scope), only_actionable=True),
            "appeals": _appeals(
                request, viewer, appellants=members, states=APPEAL_OPEN, only_decidable=True
            ),
            "back": request.url.path,
            "today": today(dashboard.now(), page["team"].timezone).isoformat(),
        }
        return render(request, "team.html", context, viewer=viewer)

    @router.get(PREFIX + "/teams/{team_id}/series.json", include_in_schema=False)
    def team_series(request: Request, team_id: str) -> Response:
        """A team's daily GMV against target, with its notes (the chart's data)."""
        viewer = viewer_of(request)
        dashboard = _dashboard(request)
        scope = _team_scope(request, viewer, team_id)
        choice = _choice(request, viewer, scope)
        return JSONResponse(
            dashboard.pages.daily_series(scope, choice.period, viewer.reader, now=dashboard.now())
        )

    @router.post(PREFIX + "/teams/{team_id}/notes", include_in_schema=False)
    async def add_team_note(request: Request, team_id: str) -> Response:
        """Add a dated note to the team's numbers (who may: as in chat, whoever sees them)."""
        viewer = viewer_of(request)
        form = await _action_form(request, viewer)
        dashboard = _dashboard(request)
        _team_scope(request, viewer, team_id)
        text = " ".join(form.get("text", "").split())
        try:
            day = date.fromisoformat(form.get("day", ""))
        except ValueError:
            return _back(request, form, "note.invalid")
        timezone = dashboard.pages.organisation.teams[team_id].timezone
        current = today(dashboard.now(), timezone)
        if not text or len(text) > 500 or abs((day - current).days) > 366:
            return _back(request, form, "note.invalid")
        add_note(
            dashboard.runtime.engine,
            f"team:{team_id}",
            day,
            text,
            viewer.reader.person.id,
            now=dashboard.now(),
        )
        return _back(request, form, "note.done", "#notes")

    @router.get(PREFIX + "/company", include_in_schema=False)
    def company(request: Request) -> Response:
        """The admins' page."""
        viewer = viewer_of(request)
        dashboard = _dashboard(request)
        if not dashboard.pages.is_admin(viewer.reader):
            raise Hidden()
        choice = _choice(request, viewer, Scope("company"))
        page = dashboard.pages.company_page(viewer.reader, choice, now=dashboard.now())
        rates = dashboard.alerts.store.false_alarm_rates() if dashboard.alerts else {}
        context = {
            **page,
            "current": "company",
            "picker": _picker(request, choice, viewer, keep={}),
            "alerts": _alerts(request, viewer, lambda a: True, only_actionable=True),
            "alert_rules": [
                {
                    "rule": rule,
                    "marked": marked,
                    "total": total,
                    "rate": viewer.reader.t(
                        "web.company.false_alarm_rate", marked=marked, total=total
                    ),
                }
                for rule, (marked, total) in sorted(rates.items())
            ],
            "appeals": _appeals(
                request, viewer, appellants=None, states=APPEAL_OPEN, only_decidable=True
            ),
            "outbox": _outbox(request, viewer),
            "back": request.url.path,
        }
        return render(request, "company.html", context, viewer=viewer)

    @router.get(PREFIX + "/audit", include_in_schema=False)
    def audit(request: Request) -> Response:
        """The audit trails read as one (admins), filtered by kind, person, id and days."""
        viewer = viewer_of(request)
        dashboard = _dashboard(request)
        if not dashboard.pages.is_admin(viewer.reader):
            raise Hidden()
        params = request.query_params
        kind = params.get("kind", "")
        person_id = params.get("person", "")
        subject = params.get("id", "")[:40]
        timezone = dashboard.pages.figures.timezone(Scope("company"))
        since = until = None
        try:
            if params.get("since"):
                since = day_bounds(date.fromisoformat(params["since"]), zone(timezone))[0]
            if params.get("until"):
                until = day_bounds(date.fromisoformat(params["until"]), zone(timezone))[1]
        except ValueError:
            raise BadPeriod("since and until are dates such as 2026-11-24") from None
        entries = trail(
            dashboard.runtime.engine,
            kinds=[kind] if kind in AUDIT_KINDS else None,
            person=person_id or None,
            id=subject or None,
            since=since,
            until=until,
            limit=200,
        )
        org = dashboard.pages.organisation
        rows = [
            dashboard.pages.audit_row(e, viewer.reader, timezone=timezone)
            for e in reversed(entries)
        ]
        context = {
            "current": "audit",
            "rows": rows,
            "kinds": AUDIT_KINDS,
            "filters": {
                "kind": kind,
                "person": person_id,
                "id": subject,
                "since": params.get("since", ""),
                "until": params.get("until", ""),
            },
            "people": sorted(org.people.values(), key=lambda p: p.id),
            "timezone": timezone,
        }
        return render(request, "audit.html", context, viewer=viewer)

    # -- actions ----------------------------------------------------------------------

    @router.post(PREFIX + "/alerts/{alert_id}/{verb}", include_in_schema=False)
    async def alert_action(request: Request, alert_id: int, verb: str) -> Response:
        """Acknowledge, snooze or mark not a problem: AlertService.act, as a card button."""
        viewer = viewer_of(request)
        form = await _action_form(request, viewer)
        dashboard = _dashboard(request)
        service = dashboard.alerts
        if service is None or verb not in ("ack", "snooze", "false_alarm"):
            raise Hidden()
        alert = service.store.get(alert_id)
        if alert is None:
            raise Hidden()
        snooze = form.get("for") if verb == "snooze" else None
        try:
            version = int(form.get("version", ""))
        except ValueError:
            version = None
        # AlertService.act checks who may act and records a refusal in the alert's trail, as
        # for a card button; a refusal here is the same 404 as an alert that does not exist.
        outcome = service.act(
            viewer.reader.person,
            alert_id,
            verb,
            dashboard.now(),
            version=version,
            snooze=snooze if snooze in SNOOZES else "never" if verb == "snooze" else None,
            note=(form.get("note") or None) if verb == "ack" else None,
            language=viewer.reader.language,
        )
        if not outcome.ok and not service.may_act(viewer.reader.person, alert):
            raise Hidden()
        if dashboard.notifier is not None:
            dashboard.notifier.apply(outcome.effects)
        if not outcome.ok and verb == "snooze" and snooze not in SNOOZES:
            return _back(request, form, "alert.snooze_invalid", f"#alert-{alert_id}")
        return _back(
            request, form, "alert.done" if outcome.ok else "alert.stale", f"#alert-{alert_id}"
        )

    @router.post(PREFIX + "/appeals/{appeal_id}/{move}", include_in_schema=False)
    async def appeal_action(request: Request, appeal_id: int, move: str) -> Response:
        """Review, accept, reject (with a reason) or withdraw: AppealService.decide."""
        viewer = viewer_of(request)
        form = await _action_form(request, viewer)
        dashboard = _dashboard(request)
        service = dashboard.appeals
        if service is None or move not in ("review", "accept", "reject", "withdraw"):
            raise Hidden()
        appeal = service.store.get(appeal_id)
        person = viewer.reader.person
        if appeal is None:
            raise Hidden()
        allowed = (
            person.id == appeal.appellant
            if move == "withdraw"
            else service.may_decide(person, appeal)
        )
        if not allowed:
            raise Hidden()
        note = " ".join(form.get("note", "").split())[:500] or None
        if move == "reject" and not note:
            return _back(request, form, "appeal.reason_needed", f"#appeal-{appeal_id}")
        try:
            version = int(form.get("version", ""))
        except ValueError:
            version = None
        decided = service.decide(
            person,
            appeal_id,
            move,
            dashboard.now(),
            note=note,
            version=version,
            language=viewer.reader.language,
        )
        if dashboard.notifier is not None:
            dashboard.notifier.apply(decided.effects)
        after = service.store.get(appeal_id)
        expected = {"review": "in_review", "accept": "accepted", "reject": "rejected"}
        done = (
            after is not None
            and after.version != appeal.version
            and after.state == expected.get(move, "withdrawn")
        )
        return _back(
            request, form, "appeal.done" if done else "appeal.stale", f"#appeal-{appeal_id}"
        )

    @router.post(PREFIX + "/outbox/{message_id}/{op}", include_in_schema=False)
    async def outbox_action(request: Request, message_id: int, op: str) -> Response:
        """An admin sends a dead letter again, or gives up on it (audited)."""
        viewer = viewer_of(request)
        form = await _action_form(request, viewer)
        dashboard = _dashboard(request)
        if (
            dashboard.outbox is None
            or op not in ("retry", "drop")
            or not dashboard.pages.is_admin(viewer.reader)
        ):
            raise Hidden()
        act = dashboard.outbox.retry if op == "retry" else dashboard.outbox.drop
        done = act(message_id, actor=viewer.reader.person.id)
        return _back(request, form, "outbox.done" if done else "outbox.stale", "#outbox")

    return router


# -- rows the pages share ---------------------------------------------------------------------


def _may_see_alert(dashboard: Dashboard, viewer: Viewer, scope_text: str) -> bool:
    kind, _, ident = scope_text.partition(":")
    scope = Scope("company") if kind == "company" else Scope(kind, ident)  # type: ignore[arg-type]
    return dashboard.pages.may_see(viewer.reader, scope)


def _alerts(
    request: Request, viewer: Viewer, wanted: Any, *, only_actionable: bool = False
) -> list[dict[str, Any]]:
    """Open alerts the reader may see (and, where asked, act on)."""
    dashboard = _dashboard(request)
    service = dashboard.alerts
    if service is None:
        return []
    rows = []
    for alert in service.store.open_alerts():
        if not wanted(alert) or not _may_see_alert(dashboard, viewer, alert.scope):
            continue
        may_act = service.may_act(viewer.reader.person, alert)
        if only_actionable and not may_act:
            continue
        rows.append(dashboard.pages.alert_row(alert, viewer.reader, may_act=may_act))
    return rows


def _appeals(
    request: Request,
    viewer: Viewer,
    *,
    appellants: list[str] | None,
    states: tuple[str, ...] | None,
    only_decidable: bool = False,
) -> list[dict[str, Any]]:
    """Appeals (of these people, in these states) with the moves the reader has."""
    dashboard = _dashboard(request)
    service = dashboard.appeals
    if service is None:
        return []
    person = viewer.reader.person
    rows = []
    for appeal in service.store.listing(appellants=appellants, states=states):
        may_decide = service.may_decide(person, appeal)
        if only_decidable and not may_decide:
            continue
        if not may_decide and appeal.appellant != person.id:
            continue
        rows.append(
            dashboard.pages.appeal_row(
                appeal,
                viewer.reader,
                may_decide=may_decide,
                appellant=appeal.appellant == person.id,
            )
        )
    return rows


def _outbox(request: Request, viewer: Viewer) -> dict[str, Any]:
    """Messages waiting and dead letters, with the counts per state."""
    dashboard = _dashboard(request)
    outbox = dashboard.outbox
    if outbox is None:
        return {"counts": [], "rows": []}
    timezone = dashboard.pages.figures.timezone(Scope("company"))
    t = viewer.reader.t
    counts = outbox.counts()
    return {
        "counts": [
            {"state": t(f"web.outbox.state.{state}"), "count": counts.get(state, 0)}
            for state in ("pending", "sending", "sent", "dead", "dropped")
        ],
        "rows": [
            {
                "id": e.id,
                "kind": e.kind,
                "where": f"{e.platform}:{e.channel}" if e.channel else e.platform,
                "state": e.state,
                "state_text": t(f"web.outbox.state.{e.state}"),
                "attempts": e.attempts,
                "error": e.error or "",
                "at": moment(e.created_at, timezone, viewer.reader.language),
                "text": e.text[:160],
                "can_retry": e.state in ("dead", "pending"),
                "can_drop": e.state in ("dead", "pending"),
            }
            for e in outbox.entries(OUTBOX_SHOWN, limit=100)
        ],
    }


def install_handlers(app: FastAPI) -> None:
    """The dashboard's refusals as pages: sign-in hint (401), not found (404), 403, 400."""

    @app.exception_handler(SignInNeeded)
    async def _signin(request: Request, exc: SignInNeeded) -> Response:
        return render(request, "signin.html", {}, status=401)

    @app.exception_handler(Hidden)
    async def _hidden(request: Request, exc: Hidden) -> Response:
        try:
            viewer: Viewer | None = viewer_of(request)
        except SignInNeeded:
            viewer = None
        return render(request, "message.html", {"key": "not_found"}, viewer=viewer, status=404)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return render(request, "message.html", {"key": "forbidden"}, status=403)

    @app.exception_handler(BadPeriod)
    async def _bad_period(request: Request, exc: BadPeriod) -> Response:
        try:
            viewer: Viewer | None = viewer_of(request)
        except SignInNeeded:
            viewer = None
        return render(
            request,
            "message.html",
            {"key": "bad_period", "detail": str(exc)},
            viewer=viewer,
            status=400,
        )
