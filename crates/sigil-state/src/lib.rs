//! Sigil's deterministic state machine: the keyring, jobs, allocations with their identities,
//! the results of applied plans, and ACL policies and tokens.
//!
//! [`SigilState::apply`] is the only way state changes. It reads no clock, draws no randomness
//! and does no I/O: time, ids and signatures arrive inside the [`Command`], so every server that
//! applies the same log reaches the same state. The Raft layer persists the records that an
//! apply touched ([`SigilState::take_dirty`]) in the same atomic batch as `last_applied`.
//!
//! [`Command`]: sigil_types::Command

mod acl;
mod apply;

pub use apply::EntryPosition;
mod records;
mod state;

pub use records::{RecordError, RecordKey};
pub use state::{AclBootstrap, SigilState};
