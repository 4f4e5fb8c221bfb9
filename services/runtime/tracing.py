"""OpenTelemetry tracing with the grpc instrumentation.

A real TracerProvider is always installed so every RPC and Kafka hop gets a
trace id (it appears in logs and travels in headers); `otel_exporter` only
chooses where finished spans are sent, and is off by default.
"""

from __future__ import annotations

import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

_EXPORTERS = ("none", "console", "otlp")


def configure_tracing(service: str, exporter: str = "none", endpoint: str = "") -> TracerProvider:
    if exporter not in _EXPORTERS:
        raise ValueError(f"otel exporter must be one of {', '.join(_EXPORTERS)}, got {exporter!r}")
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):  # already configured in this process
        return current
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if exporter == "console":
        # stderr: stdout carries the JSON log stream.
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    elif exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
    trace.set_tracer_provider(provider)
    return provider


def shutdown_tracing() -> None:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()
