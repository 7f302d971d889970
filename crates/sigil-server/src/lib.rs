//! A Sigil server: the gRPC services (plans, identities, keyring, ACL, operator, Raft
//! transport), the HTTP endpoints (JWKS, OIDC discovery, health), authentication and
//! authorization, leader forwarding and the leader's keyring duties, wired around one Raft node.
//!
//! Every write handler reads as the same sequence: authenticate and authorize, validate,
//! forward if not the leader (where the same handler authenticates and authorizes again), build
//! the command (signing on the leader), propose, reply once it committed.

mod acl;
mod auth;
pub mod config;
pub mod convert;
mod ctx;
mod error;
mod http;
mod identity;
mod keyring;
mod keys;
mod node;
mod operator;
mod plan;

pub use config::{AclConfig, ConfigError, KeyringConfig, PeerConfig, RaftConfig, ServerConfig};
pub use ctx::{Ctx, FORWARDED_HEADER, LeaderInfo};
pub use error::{LEADER_HEADER, ServiceError};
pub use http::{Health, health_of};
pub use keys::{KeyCache, KeyView};
pub use node::{ServerHandle, StartError, start};
