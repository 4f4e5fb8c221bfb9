"""How a delivery status may move.

Platforms report late, twice and out of order (WhatsApp may send "read" with no
"delivered"), so the current status only moves forward; a stale report is kept
in the history without moving it back. DISPATCHED and RETRYING alternate while
attempts go on. FAILED and DEAD_LETTERED end a round.
"""

from __future__ import annotations

from chat4all.messaging.v1 import message_pb2

S = message_pb2.DeliveryStatus

_RANK = {
    S.DELIVERY_STATUS_UNSPECIFIED: 0,
    S.DELIVERY_STATUS_ACCEPTED: 1,
    S.DELIVERY_STATUS_DISPATCHED: 2,
    S.DELIVERY_STATUS_RETRYING: 2,
    S.DELIVERY_STATUS_SENT: 3,
    S.DELIVERY_STATUS_DELIVERED: 4,
    S.DELIVERY_STATUS_READ: 5,
    S.DELIVERY_STATUS_FAILED: 6,
    S.DELIVERY_STATUS_DEAD_LETTERED: 7,
}


def advances(current: int, reported: int) -> bool:
    return _RANK[reported] >= _RANK[current]
