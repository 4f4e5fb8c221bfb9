"""Start-up and shut-down of a Meta emulator's web app, the same for both platforms."""

from __future__ import annotations

from aiohttp import web

from .state import MetaState
from .tasks import TaskSet


def add_lifecycle(app: web.Application, state: MetaState) -> None:
    """Subscribe the configured webhook once the app runs (its handshake retried until the
    receiver answers); on shut-down stop every background task and webhook delivery."""
    # Not in state.tasks: a reset must not cancel the startup subscription.
    startup_tasks = TaskSet()
    config = state.config

    async def startup(_: web.Application) -> None:
        if config.webhook_url:
            startup_tasks.spawn(state.webhooks.subscribe_when_ready(config.webhook_url, config.verify_token),
                                name="startup subscription")

    async def shutdown(_: web.Application) -> None:
        startup_tasks.cancel_all()
        state.tasks.cancel_all()
        await state.webhooks.close()

    app.on_startup.append(startup)
    app.on_shutdown.append(shutdown)
