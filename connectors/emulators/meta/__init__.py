"""The pieces both Meta emulators (WhatsApp Cloud API, Instagram Messaging) share:
Graph API error bodies and request handling, the bearer-token check, webhook
signing and signed delivery with retries, the subscription handshake, faults,
GCRA rate limits, media, recorded requests and the common control API.

Modules: errors, wire (JSON as Meta writes it, request bodies), auth, signing,
handshake, webhooks, faults, ratelimit, media, recording, settings, tasks,
state, graph, control, config, cli.
"""
