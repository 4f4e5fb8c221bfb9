"""Local emulators of external platform APIs, for tests, benchmarks and the local platform."""
