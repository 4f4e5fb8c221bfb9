"""MessageConnector for Telegram: sends text as the bot, reports what Telegram supports.

SendMessage, in order: check the request; answer a repeat from the send
ledger; claim the send so a concurrent duplicate waits for this one; take a
slot from the shared flood control (or answer RESOURCE_EXHAUSTED with the
exact wait, without calling Telegram); call sendMessage; record the answer.
"""

from __future__ import annotations

import asyncio
import logging
import re

import grpc
from chat4all.channel.v1 import channel_pb2
from chat4all.connector.v1 import message_pb2, request_response_pb2, service_pb2_grpc
from chat4all.messaging.v1 import message_pb2 as messaging_pb2
from google.protobuf import duration_pb2
from redis.exceptions import RedisError

from connectors.telegram import metrics
from connectors.telegram.bot_api import BotApi
from connectors.telegram.flood_control import FloodControl, is_group_chat
from connectors.telegram.send_ledger import Claim, SendLedger, SentRecord
from connectors.telegram.settings import TelegramSettings
from services.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    ServiceError,
    Unavailable,
)

log = logging.getLogger("chat4all.telegram.connector")

MAX_TEXT_LENGTH = 4096
_CHAT_ID = re.compile(r"-?[0-9]{1,20}")
_CHANNEL_USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}")
# How long a duplicate send waits for the one in progress before answering UNAVAILABLE.
_DUPLICATE_WAIT_SECONDS = 5.0
_DUPLICATE_RETRY_AFTER_SECONDS = 1.0


class TelegramConnector(service_pb2_grpc.MessageConnectorServicer):
    def __init__(self, settings: TelegramSettings, api: BotApi, flood: FloodControl, ledger: SendLedger) -> None:
        self.settings = settings
        self.api = api
        self.flood = flood
        self.ledger = ledger
        self.bot_id = settings.bot_id

    # SendMessage ------------------------------------------------------------------------

    async def SendMessage(self, request: request_response_pb2.SendMessageRequest, context: grpc.aio.ServicerContext):
        try:
            chat_id = self._recipient_chat(request)
            text = self._text(request, chat_id)
        except ServiceError:
            metrics.SENDS.labels("refused").inc()
            raise
        try:
            return await self._send_once(request, chat_id, text, context)
        except RedisError as error:
            # Without the ledger and the shared limits a send could go out twice or too fast.
            metrics.SENDS.labels("failed").inc()
            raise Unavailable(f"Redis (send ledger and limits) is unavailable: {type(error).__name__}") from None

    async def _send_once(
        self,
        request: request_response_pb2.SendMessageRequest,
        chat_id: int | str,
        text: str,
        context: grpc.aio.ServicerContext,
    ) -> request_response_pb2.SendMessageResponse:
        message_id = request.message_id
        claim = await self._claim(chat_id, message_id, context)
        if claim.sent is not None:
            metrics.SENDS.labels("repeat").inc()
            return _response(claim.sent)
        lock = claim.lock
        assert lock is not None
        try:
            refusal = await self.flood.admit(chat_id)
            if refusal is not None:
                metrics.SENDS_THROTTLED.labels(refusal.scope).inc()
                raise ResourceExhausted(
                    f"the {refusal.scope.replace('_', ' ')} send limit is full; retry in {refusal.retry_after_seconds:.3f}s",
                    retry_after_seconds=refusal.retry_after_seconds,
                )
        except BaseException:
            await self.ledger.release(chat_id, message_id, lock)
            raise
        # From here the request may reach Telegram: finish it even if this RPC is cancelled (the
        # router died or gave up waiting), so the send is recorded and a retry is answered from
        # the ledger instead of sending the message a second time.
        return await asyncio.shield(self._send_and_record(request, chat_id, text, lock))

    async def _send_and_record(
        self, request: request_response_pb2.SendMessageRequest, chat_id: int | str, text: str, lock: str
    ) -> request_response_pb2.SendMessageResponse:
        message_id = request.message_id
        try:
            result = await self.api.send_message(chat_id, text)
        except BaseException as error:
            await self.ledger.release(chat_id, message_id, lock)
            if isinstance(error, ServiceError):
                metrics.SENDS.labels("failed").inc()
                log.info(
                    "send failed",
                    extra={"message_id": message_id, "chat_id": str(chat_id), "grpc_code": error.code.name,
                           "reason": error.message, "attempt": request.attempt},
                )
            raise
        sent = SentRecord([str(result["message_id"])], int(result.get("date") or 0))
        try:
            await self.ledger.record(chat_id, message_id, lock, sent)
        except Exception:
            # The message is out: answering an error now would make the router send it again.
            log.exception("sent, but could not record the send; a repeat would send it again",
                          extra={"message_id": message_id})
        metrics.SENDS.labels("sent").inc()
        return _response(sent)

    def _recipient_chat(self, request: request_response_pb2.SendMessageRequest) -> int | str:
        if not request.message_id:
            raise InvalidArgument("message_id is required")
        if not request.account_id:
            raise InvalidArgument("account_id is required")
        if request.account_id != self.bot_id:
            raise NotFound(f"account {request.account_id} is not served by this connector (bot {self.bot_id})")
        recipient = request.recipient
        if recipient.channel != channel_pb2.CHANNEL_TELEGRAM:
            raise InvalidArgument(
                f"recipient.channel is {channel_pb2.Channel.Name(recipient.channel)}; this connector serves CHANNEL_TELEGRAM"
            )
        address = recipient.external_id.strip()
        if _CHAT_ID.fullmatch(address):
            return int(address)
        if _CHANNEL_USERNAME.fullmatch(address):
            return address
        raise InvalidArgument(f"recipient.external_id {address!r} is not a Telegram chat id or @channelusername")

    def _text(self, request: request_response_pb2.SendMessageRequest, chat_id: int | str) -> str:
        content = request.content
        if content.attachments:
            raise FailedPrecondition("attachments are not supported by this connector yet")
        body = content.WhichOneof("body")
        if body == "template":
            # Templates exist for WhatsApp's 24 h window; Telegram has no window and no templates,
            # and rendering a template's name and parameters would send the user gibberish.
            raise InvalidArgument("Telegram has no message templates (and no reply window): send text")
        if body != "text" or not content.text.strip():
            raise InvalidArgument("the message has no text")
        text = content.text
        if is_group_chat(chat_id) and request.sender_display_name:
            # The bot speaks for every Chat4All member in a group: say who wrote it.
            text = f"{request.sender_display_name}: {text}"
        if len(text) > MAX_TEXT_LENGTH:
            raise InvalidArgument(f"the text has {len(text)} characters; Telegram accepts at most {MAX_TEXT_LENGTH}")
        return text

    async def _claim(self, chat_id: int | str, message_id: str, context: grpc.aio.ServicerContext) -> Claim:
        """The earlier send's record, or the lock to send now; waits a little for a concurrent send."""
        loop = asyncio.get_running_loop()
        remaining = context.time_remaining()
        wait = _DUPLICATE_WAIT_SECONDS if remaining is None else min(_DUPLICATE_WAIT_SECONDS, max(0.0, remaining - 0.5))
        deadline = loop.time() + wait
        while True:
            claim = await self.ledger.find_or_claim(chat_id, message_id)
            if claim.sent is not None or claim.lock is not None:
                return claim
            if loop.time() >= deadline:
                metrics.SENDS.labels("in_progress").inc()
                raise Unavailable(
                    f"message {message_id} is being sent to {chat_id} by another call",
                    retry_after_seconds=_DUPLICATE_RETRY_AFTER_SECONDS,
                )
            await asyncio.sleep(0.05)

    # GetCapabilities ----------------------------------------------------------------------

    async def GetCapabilities(self, request: request_response_pb2.GetCapabilitiesRequest, context):
        self._check_account(request.account_id)
        s = self.settings
        return request_response_pb2.GetCapabilitiesResponse(
            channel=channel_pb2.CHANNEL_TELEGRAM,
            content_kinds=[message_pb2.CONTENT_KIND_TEXT],
            rate_limits=[
                _rate_limit(message_pb2.RATE_LIMIT_SCOPE_RECIPIENT, s.telegram_private_chat_per_second, 1),
                _rate_limit(message_pb2.RATE_LIMIT_SCOPE_GROUP, s.telegram_group_per_minute, 60),
                _rate_limit(message_pb2.RATE_LIMIT_SCOPE_ACCOUNT, s.telegram_bot_per_second, 1),
            ],
            # Telegram reports nothing after SENT: no delivery or read receipts for bots.
            reported_statuses=[],
            supports_groups=True,
            max_text_length=MAX_TEXT_LENGTH,
        )

    # CheckHealth ----------------------------------------------------------------------------

    async def CheckHealth(self, request: request_response_pb2.CheckHealthRequest, context):
        self._check_account(request.account_id)
        try:
            await self.api.get_me(timeout_seconds=self.settings.telegram_health_timeout_seconds)
        except ServiceError:
            pass  # the outcome is in last_check
        check = self.api.last_check
        response = request_response_pb2.CheckHealthResponse(
            platform_reachable=check.reachable,
            # The circuit breaker comes in a later issue; until then sends always go through.
            circuit_state=message_pb2.CIRCUIT_STATE_CLOSED,
            detail=check.detail,
        )
        response.latency.FromNanoseconds(int(check.latency_seconds * 1e9))
        response.check_time.FromNanoseconds(int(check.check_time * 1e9))
        return response

    def _check_account(self, account_id: str) -> None:
        if account_id and account_id != self.bot_id:
            raise NotFound(f"account {account_id} is not served by this connector (bot {self.bot_id})")


def _response(sent: SentRecord) -> request_response_pb2.SendMessageResponse:
    response = request_response_pb2.SendMessageResponse(
        platform_message_ids=sent.platform_message_ids,
        # Telegram accepted it; it never reports delivery or reading to bots.
        status=messaging_pb2.DELIVERY_STATUS_SENT,
    )
    if sent.send_time:
        response.send_time.FromSeconds(sent.send_time)
    return response


def _rate_limit(scope: int, rate: float, per_seconds: int) -> message_pb2.RateLimit:
    """`rate` messages per `per_seconds` as whole messages per period (0.5/s -> 1 per 2 s)."""
    if rate >= 1 and float(rate).is_integer():
        count, period = int(rate), float(per_seconds)
    else:
        count, period = 1, per_seconds / rate
    limit = message_pb2.RateLimit(scope=scope, max_messages=count, platform_error_code="429")
    limit.period.CopyFrom(duration_pb2.Duration(seconds=int(period), nanos=int(round(period % 1 * 1e9))))
    return limit
