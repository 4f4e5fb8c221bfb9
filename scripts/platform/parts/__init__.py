"""One module per part of the local platform, in start order: postgres, redis, seaweedfs, kafka, envoy, apps
(clamd, for the files service's malware scan, is an app with a part of its own)."""
