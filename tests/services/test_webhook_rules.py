"""The webhook service's rules on their own: the signature scheme as documented, the retry
schedule, which URLs may be delivered to, the POST body, and its settings."""

import hashlib
import hmac
import json
import random
import time
import uuid

import pytest
from chat4all.messaging.v1 import message_pb2 as messaging_pb
from chat4all.webhooks.v1 import message_pb2 as pb
from google.protobuf import json_format
from multidict import CIMultiDict

from services.runtime.config import ConfigError, load_settings
from services.runtime.errors import InvalidArgument
from services.webhooks import payloads, signing
from services.webhooks.backoff import retry_delay
from services.webhooks.destinations import AddressNotAllowed, PublicOnlyResolver, check_url
from services.webhooks.settings import WebhookSettings

SECRET = "whsec_test-secret"
BODY = b'{"eventId": "e1", "event": {"conversationId": "c1"}}'


def documented_signature(secret: str, timestamp: str, body: bytes) -> str:
    """What the proto comment tells a receiver to compute, written out independently."""
    return hmac.new(secret.encode("utf-8"), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def test_signature_headers_follow_the_documented_scheme():
    headers = signing.signature_headers(SECRET, 1_700_000_000, BODY)
    assert headers["X-Chat4All-Timestamp"] == "1700000000"
    assert headers["X-Chat4All-Signature"] == "v1=" + documented_signature(SECRET, "1700000000", BODY)


def test_verify_accepts_the_signature_and_refuses_tampering_old_timestamps_and_other_secrets():
    now = time.time()
    headers = CIMultiDict(signing.signature_headers(SECRET, int(now), BODY))
    assert signing.verify(SECRET, headers, BODY, now)
    assert not signing.verify(SECRET, headers, BODY + b" ", now)
    assert not signing.verify("whsec_other", headers, BODY, now)
    assert not signing.verify(SECRET, headers, BODY, now + signing.TOLERANCE_SECONDS + 1)
    assert not signing.verify(SECRET, CIMultiDict(), BODY, now)
    # During a rotation the header may list several entries; any matching v1 entry is enough.
    rotated = CIMultiDict(headers)
    rotated["x-chat4all-signature"] = "v1=" + "0" * 64 + ", " + headers["X-Chat4All-Signature"]
    assert signing.verify(SECRET, rotated, BODY, now)


def test_new_secrets_are_long_random_and_recognisable():
    secrets = {signing.new_secret() for _ in range(100)}
    assert len(secrets) == 100
    assert all(s.startswith("whsec_") and len(s) >= 40 for s in secrets)


def test_retry_delays_grow_exponentially_with_jitter_up_to_the_cap():
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(60.0, 1.0 * 2 ** (attempt - 1))
        delays = [retry_delay(attempt, 1.0, 60.0, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), attempt
        assert len(set(delays)) > 100  # jittered, not one fixed value
    assert retry_delay(10_000, 1.0, 60.0, rng) <= 60.0


@pytest.mark.parametrize(
    "url",
    ["https://example.com/hooks", "http://example.com:8080/a?b=c", "https://93.184.216.34/x", "https://[2606:4700::1]/"],
)
def test_public_http_urls_are_accepted(url):
    assert check_url(url, private_allowed=False) == url


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", "required"),
        ("example.com/hooks", "http"),
        ("ftp://example.com/x", "http"),
        ("https://", "no host"),
        ("https://example.com/x#frag", "fragment"),
        ("https://example.com:99999/", "malformed"),
        ("https://example.com/" + "a" * 2048, "2048"),
        ("https://exa mple.com/", "whitespace"),
    ],
)
def test_malformed_urls_are_invalid(url, words):
    with pytest.raises(InvalidArgument) as error:
        check_url(url, private_allowed=True)
    assert words in error.value.message


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/",
        "http://localhost/",
        "http://api.localhost/",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
    ],
)
def test_private_destinations_are_refused_unless_the_deployment_allows_them(url):
    with pytest.raises(InvalidArgument) as error:
        check_url(url, private_allowed=False)
    assert "not a public address" in error.value.message
    assert check_url(url, private_allowed=True) == url


async def test_the_resolver_drops_private_addresses_a_name_resolves_to():
    resolver = PublicOnlyResolver()
    try:
        with pytest.raises(AddressNotAllowed):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()


def test_the_body_is_the_event_in_rest_json_with_a_stable_event_id():
    conversation_id = str(uuid.uuid4())
    event = messaging_pb.ConversationEvent(
        cursor="abc", conversation_id=conversation_id,
        message_created=messaging_pb.Message(message_id=str(uuid.uuid4()), content=messaging_pb.MessageContent(text="olá")),
    )
    webhook_id = uuid.uuid4()
    first, again = payloads.payload(webhook_id, event), payloads.payload(webhook_id, event)
    assert first == again
    assert payloads.payload(uuid.uuid4(), event).event_id == first.event_id  # every webhook: the same id
    other = messaging_pb.ConversationEvent(cursor="abc", conversation_id=conversation_id)
    assert payloads.event_id(other) != first.event_id  # another event: another id

    body = json.loads(first.body)
    assert body["eventId"] == str(first.event_id)
    assert body["webhookId"] == str(webhook_id)
    assert body["eventType"] == "WEBHOOK_EVENT_TYPE_MESSAGE_CREATED"
    assert body["event"]["messageCreated"]["content"]["text"] == "olá"
    assert body["event"]["messageCreated"]["senderUserId"] == ""  # every field printed, as REST shows it
    parsed = json_format.Parse(first.body, pb.WebhookEvent())
    assert parsed.event == event
    assert first.event_type == pb.WEBHOOK_EVENT_TYPE_MESSAGE_CREATED


def test_one_event_has_one_id_whichever_stream_carried_it():
    """StreamConversationEvents and StreamUserEvents send the same stored event with different
    cursors; conversation- and user-scoped webhooks must still give it the same id."""
    conversation_id = str(uuid.uuid4())
    stored = messaging_pb.ConversationEvent(
        conversation_id=conversation_id,
        delivery_status_changed=messaging_pb.DeliveryUpdate(
            message_id=str(uuid.uuid4()), recipient=messaging_pb.Recipient(user_id=str(uuid.uuid4())),
            change=messaging_pb.StatusChange(status=messaging_pb.DELIVERY_STATUS_SENT),
        ),
    )
    stored.occur_time.FromNanoseconds(1_700_000_000_123_456_789)
    on_conversation_stream, on_user_stream = messaging_pb.ConversationEvent(), messaging_pb.ConversationEvent()
    on_conversation_stream.CopyFrom(stored)
    on_conversation_stream.cursor = "eyJzIjoiZXZlbnRzOi4uLiIsInEiOjd9"
    on_user_stream.CopyFrom(stored)
    on_user_stream.cursor = "AZ3x-a-user-stream-cursor"
    assert payloads.event_id(on_conversation_stream) == payloads.event_id(on_user_stream)
    # Parsed back from its bytes, as a stream delivers it: still the same id.
    assert payloads.event_id(messaging_pb.ConversationEvent.FromString(on_user_stream.SerializeToString())) == (
        payloads.event_id(on_conversation_stream)
    )

    # Anything else that differs is another event: the next status, or a nanosecond later.
    read = messaging_pb.ConversationEvent()
    read.CopyFrom(on_user_stream)
    read.delivery_status_changed.change.status = messaging_pb.DELIVERY_STATUS_READ
    later = messaging_pb.ConversationEvent()
    later.CopyFrom(on_user_stream)
    later.occur_time.FromNanoseconds(1_700_000_000_123_456_790)
    ids = {payloads.event_id(e) for e in (on_user_stream, read, later)}
    assert len(ids) == 3


def test_settings_refuse_nonsense():
    assert load_settings(WebhookSettings, environ={}).delivery_max_attempts == 8
    for environ in (
        {"C4A_DELIVERY_MAX_ATTEMPTS": "0"},
        {"C4A_DELIVERY_BACKOFF_BASE_SECONDS": "10", "C4A_DELIVERY_BACKOFF_MAX_SECONDS": "1"},
        {"C4A_DELIVERY_TIMEOUT_SECONDS": "0"},
        {"C4A_SOURCE_SCAN_SECONDS": "20", "C4A_SOURCE_LEASE_SECONDS": "30"},
    ):
        with pytest.raises(ConfigError):
            load_settings(WebhookSettings, environ=environ)
