"""The inbound side: a Bolt app that verifies Slack's requests and turns them into neutral
messages for the pipeline. (Over HTTP, event callbacks — nearly all the traffic — are parsed
with `parse_event` without Bolt's dispatch: `SlackConnection.take_event`.)

Bolt's built-in middleware checks the `v0=` signature over the raw body with its 5-minute
window (forged, tampered and replayed requests get 401 before anything runs), answers
`url_verification` and `ssl_check`, and drops the bot's own events. The listeners here only
parse and hand on: `pipeline.accept` records the delivery (a retried event — `X-Slack-Retry-Num`
— has the same `event_id` and stops there, even while the first is still being answered) and
queues the work for the pipeline's workers, so the acknowledgement goes back at once.

Listeners run before the response is sent (`process_before_response`): the delivery is
recorded before Slack hears "200", so a failure to record gets a 500 and Slack retries it.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from adapters.slack.render import action_of
from bot.chat.messages import Action, InboundMessage, displayable
from kpi_engine.clock import system_clock

if TYPE_CHECKING:
    from bot.chat.pipeline import Pipeline

log = logging.getLogger(__name__)

PLATFORM = "slack"
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
# Message subtypes that are somebody writing to the bot; edits, joins, bot posts… are not.
_SPOKEN_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})


def _seconds(value: object, default: float) -> int:
    try:
        return int(float(str(value)))
    except (TypeError, ValueError):
        return int(default)


def clean_text(text: str, bot_user: str | None) -> tuple[str, tuple[str, ...]]:
    """The text with the bot's mention removed and Slack's escapes undone, and the user ids
    it mentions (the bot's own excepted). Other mentions stay in the text as <@U…>."""
    mentions = tuple(
        dict.fromkeys(m.group(1) for m in _MENTION.finditer(text) if m.group(1) != bot_user)
    )
    if bot_user:
        text = re.sub(rf"<@{re.escape(bot_user)}(?:\|[^>]*)?>", " ", text)
    text = _MENTION.sub(lambda m: f"<@{m.group(1)}>", text)
    # Slack escapes exactly these three in message text.
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(displayable(text).split()), mentions  # no lone surrogate or control


def parse_event(body: dict[str, Any], bot_user: str | None) -> InboundMessage | None:
    """An Events API `event_callback` (app_mention, or a message in a direct chat) as an
    `InboundMessage`; None for events that are not somebody talking to the bot."""
    event = body.get("event") or {}
    kind = event.get("type")
    if kind == "message":
        if event.get("channel_type") != "im" or event.get("subtype") not in _SPOKEN_SUBTYPES:
            return None  # channel messages reach us as app_mention when they address the bot
    elif kind != "app_mention":
        return None
    user = event.get("user")
    if not user or event.get("bot_id") or user == bot_user:
        return None
    text, mentions = clean_text(str(event.get("text") or ""), bot_user)
    return InboundMessage(
        platform=PLATFORM,
        workspace=str(body.get("team_id") or event.get("team") or ""),
        channel=str(event.get("channel") or ""),
        sender=str(user),
        text=text,
        event_id=str(body.get("event_id") or f"{event.get('channel')}:{event.get('ts')}"),
        received_at=_seconds(body.get("event_time"), system_clock()),
        thread=event.get("thread_ts"),
        mentions=mentions,
        is_direct=event.get("channel_type") == "im",
    )


def parse_command(body: dict[str, Any], bot_user: str | None) -> InboundMessage:
    """A slash command (`/kpi gmv today`) as an `InboundMessage` asking its text."""
    text, mentions = clean_text(str(body.get("text") or ""), bot_user)
    channel = str(body.get("channel_id") or "")
    command = str(body.get("command") or "/kpi")
    return InboundMessage(
        platform=PLATFORM,
        workspace=str(body.get("team_id") or ""),
        channel=channel,
        sender=str(body.get("user_id") or ""),
        text=f"{command} {text}".strip(),
        # A command has no event id; its trigger id is unique to the invocation.
        event_id="command:"
        + str(body.get("trigger_id") or body.get("response_url") or uuid.uuid4().hex),
        received_at=int(system_clock()),
        mentions=mentions,
        is_direct=body.get("channel_name") == "directmessage" and channel.startswith("D"),
    )


def parse_actions(body: dict[str, Any]) -> list[Action]:
    """A `block_actions` payload's button clicks as `Action`s (one per action in it)."""
    container = body.get("container") or {}
    message = body.get("message") or {}  # absent for an ephemeral message
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id") or ""
    message_ts = message.get("ts") or container.get("message_ts") or ""
    thread = message.get("thread_ts") or container.get("thread_ts")
    user = body.get("user") or {}
    workspace = (body.get("team") or {}).get("id") or user.get("team_id") or ""
    actions = []
    for item in body.get("actions") or []:
        if item.get("type") != "button" or not item.get("action_id"):
            continue
        action_ts = str(item.get("action_ts") or "")
        actions.append(
            Action(
                platform=PLATFORM,
                workspace=str(workspace),
                action=action_of(str(item["action_id"])),
                value=str(item.get("value") or ""),
                sender=str(user.get("id") or ""),
                channel=str(channel),
                message_id=str(message_ts),
                # The click's own id: the message it was on and the moment of the click.
                event_id=f"{container.get('message_ts') or message_ts}:{action_ts}",
                received_at=_seconds(action_ts, system_clock()),
                thread=thread if thread and thread != message_ts else None,
            )
        )
    return actions


def build_bolt_app(client: WebClient, signing_secret: str | None, pipeline: Pipeline) -> App:
    """The Bolt app for both transports; HTTP requests are verified with `signing_secret`
    (Socket Mode needs none: the app-level token authenticates the socket)."""
    app = App(
        client=client,
        signing_secret=signing_secret or "",
        request_verification_enabled=signing_secret is not None,
        token_verification_enabled=False,  # no Web API call while the app is being built
        process_before_response=True,
        logger=logging.getLogger("adapters.slack.bolt"),
    )

    @app.event("app_mention")
    def handle_mention(body: dict[str, Any], context: BoltContext, ack: Ack) -> None:
        message = parse_event(body, context.bot_user_id)
        if message is not None:
            pipeline.accept(message)
        ack()

    @app.event("message")
    def handle_message(body: dict[str, Any], context: BoltContext, ack: Ack) -> None:
        message = parse_event(body, context.bot_user_id)
        if message is not None:
            pipeline.accept(message)
        ack()

    @app.event(re.compile(".*"))
    def handle_other_event(ack: Ack) -> None:
        ack()  # subscribed to more than we answer: acknowledge, so Slack does not retry

    @app.command(re.compile(".*"))
    def handle_command(body: dict[str, Any], context: BoltContext, ack: Ack) -> None:
        pipeline.accept(parse_command(body, context.bot_user_id))
        ack()

    @app.block_action(re.compile(".*"))
    def handle_action(body: dict[str, Any], ack: Ack) -> None:
        for action in parse_actions(body):
            pipeline.accept_action(action)
        ack()

    return app
