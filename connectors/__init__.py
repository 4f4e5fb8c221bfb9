"""Channel connectors: each implements the MessageConnector gRPC service for one platform."""
