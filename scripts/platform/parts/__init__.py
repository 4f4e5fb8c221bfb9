"""One module per part of the local platform, in start order: postgres, redis, seaweedfs, kafka, envoy, apps."""
