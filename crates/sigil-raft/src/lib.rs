//! Sigil's Raft layer: the log store and state-machine store on sled, the tonic transport
//! between servers, and the server side of that transport.
//!
//! Durability contract (guarantee 2): a vote or a log append is reported to openraft only after
//! sled has flushed it to disk; applying a batch of entries and recording `last_applied` is one
//! atomic sled batch; a snapshot replaces the persisted state in one batch.

mod codec;
mod log_store;
mod network;
mod service;
mod state_machine;

pub use log_store::LogStore;
pub use network::{LinkFilter, Network, PeerChannels};
pub use service::RaftTransport;
pub use state_machine::{KeyringObserver, SharedState, StateMachineStore};

/// A Sigil Raft node.
pub type Raft = openraft::Raft<sigil_types::TypeConfig, StateMachineStore>;

/// Opens (or creates) the sled database that holds one server's log and state.
pub fn open_db(path: &std::path::Path) -> std::io::Result<sled::Db> {
    sled::Config::new()
        .path(path)
        .mode(sled::Mode::HighThroughput)
        .open()
        .map_err(codec::io_err)
}
