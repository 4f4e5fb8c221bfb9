"""MessageConnector for any platform (see platform.py).

SendMessage, in order: check the account and the request (the platform's
`prepare`); answer a repeat from the send ledger; claim the send so a
concurrent duplicate waits for this one; pass the circuit breaker (or answer
UNAVAILABLE with its wait); take a slot from every shared rate limit (or
answer RESOURCE_EXHAUSTED with the exact wait, without calling the platform);
call the platform; record the answer and index its message ids for status
reports. From the platform call on, the work is shielded from cancellation: a
router that gave up waiting must not make us forget a send that went out.

A send of several platform messages (a text, then files) notes each part that
went out, so the next attempt resumes after them; where each part counts against
the limits (Outgoing.each_part_counts), each takes its own slot before it goes.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from chat4all.channel.v1 import channel_pb2
from chat4all.connector.v1 import message_pb2, request_response_pb2, service_pb2_grpc
from chat4all.messaging.v1 import message_pb2 as messaging_pb2
from redis.exceptions import RedisError

from connectors.sdk import metrics
from connectors.sdk.breaker import CircuitBreaker, CircuitState
from connectors.sdk.platform import Outgoing, Platform
from connectors.sdk.rate_limits import RateLimiter, Refusal
from connectors.sdk.send_ledger import Claim, DeliveryRef, SendLedger, SentRecord
from services.runtime.errors import InvalidArgument, NotFound, ResourceExhausted, ServiceError, Unavailable

log = logging.getLogger("chat4all.connector")

# How long a duplicate send waits for the one in progress before answering UNAVAILABLE.
_DUPLICATE_WAIT_SECONDS = 5.0
_DUPLICATE_RETRY_AFTER_SECONDS = 1.0
_CIRCUIT_STATES = {
    CircuitState.CLOSED: message_pb2.CIRCUIT_STATE_CLOSED,
    CircuitState.OPEN: message_pb2.CIRCUIT_STATE_OPEN,
    CircuitState.HALF_OPEN: message_pb2.CIRCUIT_STATE_HALF_OPEN,
}


class LimitFull(ResourceExhausted):
    """A shared send limit is full: no platform call was made for what is left of the send."""


class ConnectorServicer(service_pb2_grpc.MessageConnectorServicer):
    def __init__(
        self,
        platform: Platform,
        ledger: SendLedger,
        limiter: RateLimiter,
        breaker: CircuitBreaker,
        *,
        health_timeout_seconds: float = 2.0,
    ) -> None:
        self.platform = platform
        self.ledger = ledger
        self.limiter = limiter
        self.breaker = breaker
        self.health_timeout_seconds = health_timeout_seconds
        self.name = platform.name

    # SendMessage ------------------------------------------------------------------------

    async def SendMessage(self, request: request_response_pb2.SendMessageRequest, context: grpc.aio.ServicerContext):
        try:
            if not request.message_id:
                raise InvalidArgument("message_id is required")
            if not request.account_id:
                raise InvalidArgument("account_id is required")
            self._check_account(request.account_id)
            if request.recipient.channel != self.platform.channel:
                serves = channel_pb2.Channel.Name(self.platform.channel)
                raise InvalidArgument(
                    f"recipient.channel is {channel_pb2.Channel.Name(request.recipient.channel)}; this connector serves {serves}"
                )
            outgoing = await self.platform.prepare(request)
        except ServiceError:
            metrics.SENDS.labels(self.name, "refused").inc()
            raise
        except RedisError as error:
            raise self._redis_unavailable(error) from None
        try:
            return await self._send_once(request, outgoing, context)
        except RedisError as error:
            # Without the ledger and the shared limits a send could go out twice or too fast.
            raise self._redis_unavailable(error) from None

    async def _send_once(
        self, request: request_response_pb2.SendMessageRequest, outgoing: Outgoing, context: grpc.aio.ServicerContext
    ) -> request_response_pb2.SendMessageResponse:
        message_id, target = request.message_id, outgoing.target
        claim = await self._claim(target, message_id, context)
        if claim.sent is not None:
            metrics.SENDS.labels(self.name, "repeat").inc()
            return _response(claim.sent)
        lock = claim.lock
        assert lock is not None
        try:
            self._admit_by_breaker()
            try:
                refusal = await self.limiter.admit(outgoing.buckets)
            except BaseException:
                self.breaker.cancel()
                raise
            if refusal is not None:
                self.breaker.cancel()
                raise self._limit_full(refusal)
        except BaseException:
            await self.ledger.release(target, message_id, lock)
            raise
        return await asyncio.shield(self._send_and_record(request, outgoing, lock))

    def _admit_by_breaker(self) -> None:
        try:
            self.breaker.admit()
        except Unavailable:
            metrics.SENDS.labels(self.name, "circuit_open").inc()
            raise

    async def _send_and_record(
        self, request: request_response_pb2.SendMessageRequest, outgoing: Outgoing, lock: str
    ) -> request_response_pb2.SendMessageResponse:
        message_id, target = request.message_id, outgoing.target
        try:
            sent = await self._send_parts(outgoing, message_id, lock)
        except BaseException as error:
            await self.ledger.release(target, message_id, lock)
            if isinstance(error, ServiceError):
                raise await self._failed(request, outgoing, error) from None
            self.breaker.cancel()
            raise
        self.breaker.succeeded()
        try:
            delivery = DeliveryRef(message_id, request.conversation_id, request.recipient)
            await self.ledger.record(target, message_id, lock, sent, delivery)
        except Exception:
            # The message is out: answering an error now would make the router send it again.
            log.exception("sent, but could not record the send; a repeat would send it again",
                          extra={"message_id": message_id, "connector": self.name})
        metrics.SENDS.labels(self.name, "sent").inc()
        return _response(sent)

    async def _send_parts(self, outgoing: Outgoing, message_id: str, lock: str) -> SentRecord:
        """Every part in order, resuming after the parts an earlier attempt sent."""
        multipart = len(outgoing.parts) > 1
        earlier = await self.ledger.parts_sent(outgoing.target, message_id) if multipart else None
        ids = list(earlier.platform_message_ids) if earlier else []
        send_time = earlier.send_time if earlier else 0
        for index, part in enumerate(outgoing.parts[len(ids):]):
            if index and outgoing.each_part_counts:
                # The first part of this attempt took the send's slot (_send_once).
                refusal = await self.limiter.admit(outgoing.buckets)
                if refusal is not None:
                    raise self._limit_full(refusal)
            sent = await self.platform.send(outgoing, part)
            ids.append(sent.platform_message_id)
            send_time = send_time or sent.send_time
            if multipart and len(ids) < len(outgoing.parts):
                await self.ledger.note_parts(outgoing.target, message_id, lock, SentRecord(ids, send_time))
        return SentRecord(ids, send_time)

    def _limit_full(self, refusal: Refusal) -> LimitFull:
        metrics.SENDS_THROTTLED.labels(self.name, refusal.scope).inc()
        metrics.SENDS.labels(self.name, "throttled").inc()
        return LimitFull(
            f"the {refusal.scope} send limit is full; retry in {refusal.retry_after_seconds:.3f}s",
            retry_after_seconds=refusal.retry_after_seconds,
        )

    async def _failed(
        self, request: request_response_pb2.SendMessageRequest, outgoing: Outgoing, error: ServiceError
    ) -> ServiceError:
        answer = self.breaker.failed(error)
        if isinstance(error, LimitFull):
            # Our own limits stopped a send half-way (the parts before went out): counted as throttled.
            return answer
        if isinstance(error, ResourceExhausted) and error.retry_after_seconds:
            # Hold the bucket the platform named, else the account's (the first).
            scope = getattr(error, "scope", "")
            bucket = next((b for b in outgoing.buckets if b.limit.scope == scope), outgoing.buckets[0] if outgoing.buckets else None)
            metrics.SENDS_THROTTLED.labels(self.name, "platform").inc()
            if bucket is not None:
                try:
                    await self.limiter.hold(bucket, error.retry_after_seconds)
                except RedisError:
                    log.warning("could not hold the %s limit after the platform's throttle", bucket.limit.scope)
        metrics.SENDS.labels(self.name, "failed").inc()
        log.info(
            "send failed",
            extra={"message_id": request.message_id, "target": outgoing.target, "grpc_code": answer.code.name,
                   "reason": answer.message, "attempt": request.attempt, "connector": self.name},
        )
        return answer

    async def _claim(self, target: str, message_id: str, context: grpc.aio.ServicerContext) -> Claim:
        """The earlier send's record, or the lock to send now; waits a little for a concurrent send."""
        loop = asyncio.get_running_loop()
        remaining = context.time_remaining()
        wait = _DUPLICATE_WAIT_SECONDS if remaining is None else min(_DUPLICATE_WAIT_SECONDS, max(0.0, remaining - 0.5))
        deadline = loop.time() + wait
        while True:
            claim = await self.ledger.find_or_claim(target, message_id)
            if claim.sent is not None or claim.lock is not None:
                return claim
            if loop.time() >= deadline:
                metrics.SENDS.labels(self.name, "in_progress").inc()
                raise Unavailable(
                    f"message {message_id} is being sent to {target} by another call",
                    retry_after_seconds=_DUPLICATE_RETRY_AFTER_SECONDS,
                )
            await asyncio.sleep(0.05)

    def _redis_unavailable(self, error: RedisError) -> Unavailable:
        metrics.SENDS.labels(self.name, "failed").inc()
        return Unavailable(f"Redis (send ledger and limits) is unavailable: {type(error).__name__}")

    # GetCapabilities, CheckHealth -----------------------------------------------------------

    async def GetCapabilities(self, request: request_response_pb2.GetCapabilitiesRequest, context):
        if request.account_id:
            self._check_account(request.account_id)
        return self.platform.capabilities()

    async def CheckHealth(self, request: request_response_pb2.CheckHealthRequest, context):
        if request.account_id:
            self._check_account(request.account_id)
        try:
            await self.platform.probe(self.health_timeout_seconds)
        except ServiceError:
            pass  # the outcome is in last_check
        check = self.platform.http.last_check
        response = request_response_pb2.CheckHealthResponse(
            platform_reachable=check.reachable,
            circuit_state=_CIRCUIT_STATES[self.breaker.state],
            detail=check.detail,
        )
        if self.breaker.state is not CircuitState.CLOSED:
            response.circuit_retry_time.FromNanoseconds(int(self.breaker.retry_time * 1e9))
        response.latency.FromNanoseconds(int(check.latency_seconds * 1e9))
        response.check_time.FromNanoseconds(int(check.check_time * 1e9))
        return response

    def _check_account(self, account_id: str) -> None:
        if account_id != self.platform.account_id:
            raise NotFound(f"account {account_id} is not served by this connector ({self.name} {self.platform.account_id})")


def _response(sent: SentRecord) -> request_response_pb2.SendMessageResponse:
    response = request_response_pb2.SendMessageResponse(
        platform_message_ids=sent.platform_message_ids,
        # The platform accepted it; later statuses (delivered, read) arrive as status reports.
        status=messaging_pb2.DELIVERY_STATUS_SENT,
    )
    if sent.send_time:
        response.send_time.FromSeconds(sent.send_time)
    return response
