"""Chat4All services: each subpackage is one deployable gRPC service; `runtime` is shared plumbing."""
