"""UserService: users, their external identities across platforms, resolution and merges."""
