//! gRPC services, HTTP endpoints and leader forwarding.
