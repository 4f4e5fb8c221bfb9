"""The service mesh edge: Envoy configuration built from the platform's settings."""
