"""Platform status reports (delivered, read, failed...) become DeliveryStatusChanged events.

A report names the platform's message id; the send ledger knows which
delivery (message, conversation, recipient) that id belongs to. The event goes
on the messages topic keyed by the conversation, so the router, the only
writer of a conversation, applies it after the message itself and in order
with everything else of that conversation. Each (platform message, status)
pair is published once: platforms redeliver (Meta for up to 7 days). Any
order is fine: the store moves a delivery's status only forward.
"""

from __future__ import annotations

import asyncio
import logging
import time

from chat4all.events.v1 import event_pb2
from chat4all.messaging.v1 import message_pb2 as messaging_pb2

from connectors.sdk import metrics
from connectors.sdk.inbound import InboundPublisher, event_id_for
from connectors.sdk.send_ledger import DeliveryRef, SendLedger
from services.messaging import topics

log = logging.getLogger("chat4all.connector.statuses")
UNKNOWN_MESSAGE = "unknown_message"
# A report may race the send's record (the platform answered, the record is being written).
_RECORD_WAIT_SECONDS = 2.0


class StatusReports:
    def __init__(self, connector: str, ledger: SendLedger, publisher: InboundPublisher) -> None:
        self.connector = connector
        self.ledger = ledger
        self.publisher = publisher

    async def report(
        self, platform_message_id: str, status: int, *, at_seconds: float, reason: str = "", code: str = ""
    ) -> str:
        """published | duplicate | busy | unknown_message; raises when Kafka did not take it."""
        delivery = await self._delivery(platform_message_id)
        if delivery is None:
            # Not sent by this connector (another tool on the same account), or its record expired.
            log.info("status for a message this connector did not send", extra={"platform_message_id": platform_message_id})
            metrics.INBOUND.labels(self.connector, "status", UNKNOWN_MESSAGE).inc()
            return UNKNOWN_MESSAGE
        name = messaging_pb2.DeliveryStatus.Name(status)

        async def build():
            event = event_pb2.Event(
                event_id=event_id_for("status", self.connector, platform_message_id, name),
                conversation_id=delivery.conversation_id,
            )
            event.occur_time.FromNanoseconds(int(at_seconds * 1e9))
            changed = event.delivery_status_changed
            changed.message_id = delivery.message_id
            changed.recipient.CopyFrom(delivery.recipient)
            changed.platform_message_id = platform_message_id
            changed.change.status = status
            changed.change.reason = reason
            changed.change.platform_error_code = code
            changed.change.change_time.FromNanoseconds(int(at_seconds * 1e9))
            changed.change.record_time.FromNanoseconds(time.time_ns())
            return topics.MESSAGES, delivery.conversation_id, event

        return await self.publisher.publish_waiting("status", f"status:{platform_message_id}:{name}", build)

    async def _delivery(self, platform_message_id: str) -> DeliveryRef | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _RECORD_WAIT_SECONDS
        while (delivery := await self.ledger.delivery_of(platform_message_id)) is None and loop.time() < deadline:
            await asyncio.sleep(0.1)
        return delivery
