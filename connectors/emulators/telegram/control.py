"""The control API tests use to drive the emulator and look inside it (JSON).

    GET    /_emulator/health
    POST   /_emulator/reset                              everything back to the start state
    POST   /_emulator/bots/{token}/updates               inject one update ("duplicate": n repeats it)
    POST   /_emulator/bots/{token}/updates:batch         {"updates": [...], "shuffle": bool, "seed": n}
    GET    /_emulator/bots/{token}/updates               the pending (unconfirmed) updates
    GET    /_emulator/bots/{token}                       identity, webhook, pending count
    PUT    /_emulator/bots/{token}                       {"first_name": .., "username": ..}
    POST   /_emulator/bots/{token}/chats                 a chat object, optionally "blocked"/"kicked": true
    GET    /_emulator/bots/{token}/webhook-deliveries    every webhook attempt: update_id, status, error
    GET    /_emulator/requests?method=&chat_id=&token=&since_seq=&limit=     DELETE clears
    GET    /_emulator/messages?chat_id=&token=&method=&since_seq=&limit=     DELETE clears
    GET|PUT|PATCH|DELETE /_emulator/faults               PUT replaces, PATCH merges, DELETE resets
    GET|PUT|PATCH|DELETE /_emulator/limits
    GET|PUT|PATCH        /_emulator/webhook-policy       retry schedule of webhook deliveries
"""

from __future__ import annotations

import dataclasses
import json
import random
from typing import Any

from aiohttp import web

from .faults import parse_fault_config
from .inbound import InjectionError, build_update, update_type
from .state import Bot, EmulatorState


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )


def _fail(message: str, status: int = 400) -> web.Response:
    return _json({"ok": False, "error": message}, status)


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"ok": False, "error": "the body is not JSON"}), content_type="application/json",
        ) from None


def _int_query(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"ok": False, "error": f"{name} must be an integer"}), content_type="application/json",
        ) from None


def _update_dataclass(instance: Any, body: Any, replace: bool) -> Any:
    """A copy of a settings dataclass with the body's fields; unknown fields are refused."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    fields = {field.name: field for field in dataclasses.fields(instance)}
    unknown = set(body) - set(fields)
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    base = type(instance)() if replace else instance
    values = {}
    for name, value in body.items():
        current = getattr(base, name)
        if isinstance(current, bool):
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false")
        elif isinstance(current, int):
            value = int(value)
        elif isinstance(current, float):
            value = float(value)
        values[name] = value
    return dataclasses.replace(base, **values)


def add_routes(app: web.Application, state: EmulatorState) -> None:
    routes = web.RouteTableDef()

    def bot_of(request: web.Request) -> Bot:
        bot = state.bot(request.match_info["token"])
        if bot is None:
            raise web.HTTPNotFound(
                text=json.dumps({"ok": False, "error": "not a valid (or not a configured) bot token"}),
                content_type="application/json",
            )
        return bot

    @routes.get("/_emulator/health")
    async def health(_: web.Request) -> web.Response:
        return _json({"ok": True, "bots": len(state.bots), "requests": len(state.requests)})

    @routes.post("/_emulator/reset")
    async def reset(_: web.Request) -> web.Response:
        state.reset()
        return _json({"ok": True})

    def _queue(bot: Bot, updates: list[dict[str, Any]], duplicates: list[int], shuffle_seed: Any,
               shuffle: bool) -> list[bool]:
        queued_flags = []
        entries: list[dict[str, Any]] = []
        for update, extra in zip(updates, duplicates):
            allowed = bot.allows(update_type(update))
            queued_flags.append(allowed)
            if allowed:
                entries.extend([update] * (1 + extra))
        if shuffle and len(entries) > 1:
            rng = random.Random(shuffle_seed) if shuffle_seed is not None else state.rng
            rng.shuffle(entries)
        bot.enqueue(entries, ordered=not shuffle)
        return queued_flags

    def _duplicate_count(body: dict[str, Any]) -> int:
        value = body.pop("duplicate", 0)
        if not isinstance(value, int) or value < 0:
            raise InjectionError("duplicate must be a non-negative integer")
        return value

    @routes.post("/_emulator/bots/{token}/updates")
    async def inject(request: web.Request) -> web.Response:
        bot = bot_of(request)
        body = await _body(request)
        if not isinstance(body, dict):
            return _fail("an update must be a JSON object")
        body = dict(body)
        try:
            duplicate = _duplicate_count(body)
            update = build_update(state, bot, body)
        except InjectionError as error:
            return _fail(str(error))
        [queued] = _queue(bot, [update], [duplicate], None, False)
        return _json({"ok": True, "update_id": update["update_id"], "queued": queued, "update": update})

    @routes.post("/_emulator/bots/{token}/updates:batch")
    async def inject_batch(request: web.Request) -> web.Response:
        bot = bot_of(request)
        body = await _body(request)
        if not isinstance(body, dict) or not isinstance(body.get("updates"), list):
            return _fail('give {"updates": [...]}')
        updates = []
        duplicates = []
        try:
            for item in body["updates"]:
                if not isinstance(item, dict):
                    raise InjectionError("an update must be a JSON object")
                item = dict(item)
                duplicates.append(_duplicate_count(item))
                updates.append(build_update(state, bot, item))
        except InjectionError as error:
            return _fail(str(error))
        queued = _queue(bot, updates, duplicates, body.get("seed"), bool(body.get("shuffle")))
        return _json({
            "ok": True,
            "update_ids": [update["update_id"] for update in updates],
            "queued": queued,
            "updates": updates,
        })

    @routes.get("/_emulator/bots/{token}/updates")
    async def pending(request: web.Request) -> web.Response:
        bot = bot_of(request)
        return _json({"ok": True, "updates": list(bot.queue)})

    @routes.get("/_emulator/bots/{token}")
    async def bot_info(request: web.Request) -> web.Response:
        bot = bot_of(request)
        webhook = bot.webhook
        return _json({
            "ok": True,
            "bot": bot.user(),
            "next_update_id": bot.next_update_id,
            "pending_update_count": len(bot.queue),
            "webhook": None if webhook is None else {
                "url": webhook.url, "secret_token": webhook.secret_token, "max_connections": webhook.max_connections,
            },
            "last_webhook_error_date": bot.last_webhook_error_date or None,
            "last_webhook_error_message": bot.last_webhook_error_message or None,
            "allowed_updates": sorted(bot.allowed_updates) if bot.allowed_updates is not None else None,
        })

    @routes.put("/_emulator/bots/{token}")
    async def set_identity(request: web.Request) -> web.Response:
        bot = bot_of(request)
        body = await _body(request)
        if not isinstance(body, dict) or set(body) - {"first_name", "username"}:
            return _fail("give first_name and/or username")
        for field in ("first_name", "username"):
            if field in body and (not isinstance(body[field], str) or not body[field]):
                return _fail(f"{field} must be a non-empty string")
        bot.set_identity(first_name=body.get("first_name"), username=body.get("username"))
        return _json({"ok": True, "bot": bot.user()})

    @routes.post("/_emulator/bots/{token}/chats")
    async def set_chat(request: web.Request) -> web.Response:
        bot = bot_of(request)
        body = await _body(request)
        if not isinstance(body, dict) or not isinstance(body.get("id"), int):
            return _fail("a chat needs an integer id")
        chat = dict(body)
        chat.setdefault("type", bot.chat(chat["id"])["type"])
        bot.remember_chat(chat)
        return _json({"ok": True, "chat": bot.chats[chat["id"]]})

    @routes.get("/_emulator/bots/{token}/webhook-deliveries")
    async def deliveries(request: web.Request) -> web.Response:
        bot = bot_of(request)
        return _json({"ok": True, "deliveries": list(bot.webhook_deliveries)})

    @routes.get("/_emulator/requests")
    async def list_requests(request: web.Request) -> web.Response:
        method = request.query.get("method", "").lower()
        chat_id = request.query.get("chat_id")
        token = request.query.get("token")
        since = _int_query(request, "since_seq")
        limit = _int_query(request, "limit")
        found = []
        for record in state.requests:
            if since is not None and record.seq <= since:
                continue
            if method and record.method.lower() != method:
                continue
            if token and record.token != token:
                continue
            if chat_id is not None and str(record.params.get("chat_id", "")) != chat_id:
                continue
            found.append(record.as_dict())
            if limit is not None and len(found) >= limit:
                break
        return _json({"ok": True, "count": len(found), "requests": found})

    @routes.delete("/_emulator/requests")
    async def clear_requests(_: web.Request) -> web.Response:
        state.requests.clear()
        return _json({"ok": True})

    @routes.get("/_emulator/messages")
    async def list_messages(request: web.Request) -> web.Response:
        chat_id = _int_query(request, "chat_id")
        token = request.query.get("token")
        method = request.query.get("method", "").lower()
        since = _int_query(request, "since_seq")
        limit = _int_query(request, "limit")
        found = []
        for sent in state.sent:
            if since is not None and sent.seq <= since:
                continue
            if chat_id is not None and sent.message["chat"]["id"] != chat_id:
                continue
            if token and sent.token != token:
                continue
            if method and sent.method.lower() != method:
                continue
            found.append(sent.as_dict())
            if limit is not None and len(found) >= limit:
                break
        return _json({"ok": True, "count": len(found), "messages": found})

    @routes.delete("/_emulator/messages")
    async def clear_messages(_: web.Request) -> web.Response:
        state.sent.clear()
        return _json({"ok": True})

    @routes.get("/_emulator/faults")
    async def get_faults(_: web.Request) -> web.Response:
        return _json({"ok": True, "faults": state.faults.snapshot()})

    @routes.put("/_emulator/faults")
    @routes.patch("/_emulator/faults")
    async def set_faults(request: web.Request) -> web.Response:
        body = await _body(request)
        if not isinstance(body, dict):
            return _fail("the body must be a JSON object")
        try:
            config = parse_fault_config(body, None if request.method == "PUT" else state.faults.config)
        except (ValueError, TypeError) as error:
            return _fail(str(error))
        state.faults.configure(config)
        return _json({"ok": True, "faults": state.faults.snapshot()})

    @routes.delete("/_emulator/faults")
    async def reset_faults(_: web.Request) -> web.Response:
        state.faults.reset()
        return _json({"ok": True, "faults": state.faults.snapshot()})

    @routes.get("/_emulator/limits")
    async def get_limits(_: web.Request) -> web.Response:
        return _json({"ok": True, "limits": state.flood.snapshot()})

    @routes.put("/_emulator/limits")
    @routes.patch("/_emulator/limits")
    async def set_limits(request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            limits = _update_dataclass(state.flood.limits, body, replace=request.method == "PUT")
        except (ValueError, TypeError) as error:
            return _fail(str(error))
        if min(limits.private_chat_per_s, limits.group_chat_per_min, limits.bot_per_s) <= 0 or min(
                limits.private_chat_burst, limits.group_chat_burst, limits.bot_burst) < 1:
            return _fail("rates must be positive and bursts at least 1")
        state.flood.configure(limits)
        return _json({"ok": True, "limits": state.flood.snapshot()})

    @routes.delete("/_emulator/limits")
    async def reset_limits(_: web.Request) -> web.Response:
        state.flood.configure(dataclasses.replace(state.config.limits))
        return _json({"ok": True, "limits": state.flood.snapshot()})

    @routes.get("/_emulator/webhook-policy")
    async def get_policy(_: web.Request) -> web.Response:
        return _json({"ok": True, "webhook_policy": dataclasses.asdict(state.webhook_policy)})

    @routes.put("/_emulator/webhook-policy")
    @routes.patch("/_emulator/webhook-policy")
    async def set_policy(request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            policy = _update_dataclass(state.webhook_policy, body, replace=request.method == "PUT")
        except (ValueError, TypeError) as error:
            return _fail(str(error))
        if policy.max_attempts < 1 or policy.timeout_s <= 0 or policy.initial_backoff_s < 0:
            return _fail("max_attempts must be at least 1 and timeout_s positive")
        state.webhook_policy = policy
        return _json({"ok": True, "webhook_policy": dataclasses.asdict(policy)})

    app.router.add_routes(routes)

