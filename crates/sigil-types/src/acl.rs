//! ACL tokens as the replicated state stores them, and the hash that stands in for a secret.
//!
//! The leader draws a token's secret, hashes it with [`SecretHash::of`] and proposes only the
//! hash; the plaintext secret is returned to the creator once and never enters the log, the
//! state or a snapshot. Every server that authenticates a request hashes the presented secret
//! the same way and looks the hash up.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The longest token name accepted, in characters.
pub const MAX_TOKEN_NAME_CHARS: usize = 256;

/// The SHA-256 of a token's secret, as lowercase hex. Safe to store and log: a secret is a
/// random UUID (122 random bits), so its hash cannot be reversed by guessing.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretHash(String);

/// Management tokens may do everything; client tokens what their policies grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Allows everything, with no policies.
    Management,
    /// Allows what the union of its policies allows.
    Client,
}

/// An ACL token without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclToken {
    /// The public id of the token, a random UUID.
    pub accessor_id: uuid::Uuid,
    /// The hash of the secret the bearer presents.
    pub secret_hash: SecretHash,
    /// A name for people, at most [`MAX_TOKEN_NAME_CHARS`] characters.
    pub name: String,
    /// Management or client.
    pub kind: TokenKind,
    /// Policy names; empty for management tokens, not empty for client tokens. A policy
    /// deleted after the token was created is ignored when the token is resolved.
    pub policies: Vec<String>,
    /// Unix milliseconds on the leader that created it.
    pub create_time_ms: u64,
}

impl SecretHash {
    /// The hash of `secret`.
    pub fn of(secret: &str) -> SecretHash {
        let digest = Sha256::digest(secret.as_bytes());
        SecretHash(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The hash as lowercase hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to tell hashes apart in a log line.
        write!(f, "SecretHash({}..)", &self.0[..self.0.len().min(8)])
    }
}

impl TokenKind {
    /// `management` or `client`, as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Management => "management",
            Self::Client => "client",
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_hashes_to_its_sha256_hex() {
        // SHA-256 of the empty string, a published test vector.
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            SecretHash::of("").as_str(),
            empty,
            "the hash is SHA-256 hex"
        );
        assert_ne!(
            SecretHash::of("a"),
            SecretHash::of("b"),
            "different secrets hash differently"
        );
    }

    #[test]
    fn debug_of_a_hash_shows_only_a_prefix() {
        let hash = SecretHash::of("secret");
        let shown = format!("{hash:?}");
        assert!(
            !shown.contains(hash.as_str()),
            "Debug does not print the whole hash: {shown}"
        );
    }
}
