//! Generated gRPC code for Sigil's public API (`sigil.v1`) and the server-only Raft transport
//! (`sigil.raft.v1`). The `.proto` sources live in `proto/` at the workspace root.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// Sigil's public API.
pub mod v1 {
    tonic::include_proto!("sigil.v1");
}

/// The server-to-server Raft transport.
pub mod raft {
    tonic::include_proto!("sigil.raft.v1");
}

/// Encoded descriptors of every service, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("sigil_descriptor");
