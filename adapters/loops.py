"""The SDKs' long connections (Feishu's WebSocket, DingTalk Stream) run an asyncio loop in a
thread of their own. Stopping such a loop leaves the SDK's tasks suspended mid-`await`; garbage
collected later, they raise into nowhere ("coroutine ignored GeneratorExit", "Event loop is
closed"). `finish` unwinds them while the loop still exists, then closes it."""

from __future__ import annotations

import asyncio

UNWIND_SECONDS = 2.0  # a task that ignores cancellation longer than this is left behind


def finish(loop: asyncio.AbstractEventLoop) -> None:
    """After `loop` stopped: cancel its pending tasks, let them unwind, and close it."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.wait(pending, timeout=UNWIND_SECONDS))
    loop.run_until_complete(loop.shutdown_asyncgens())
    if not any(not task.done() for task in pending):
        loop.close()
