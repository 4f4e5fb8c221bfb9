"""The local platform: one command starts every part of Chat4All on loopback."""
