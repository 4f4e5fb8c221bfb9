"""Tests of the local platform (scripts/platformctl)."""
