"""Test support: isolated real infrastructure (free ports, own databases, own broker)."""
