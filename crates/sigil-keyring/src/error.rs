//! The one error type of `sigil-keyring`.
//!
//! Returned by every fallible keyring rule, by KEK parsing and by unwrapping. The state machine
//! turns these into apply results and the server maps them to gRPC statuses, so every variant is
//! named for the condition and its message says what the operator can do about it.

use crate::{KeyId, KeyState};

/// Everything that can go wrong with key ids, KEKs, wrapped keys and keyring transitions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// A string that should hold a key id is not a hyphenated UUID.
    #[error(
        "invalid key id {input:?}: expected a hyphenated UUID such as \
             \"6f1c2d3e-4a5b-4c6d-8e7f-901234567890\" ({reason})"
    )]
    InvalidKeyId {
        /// The rejected text, cut to 64 characters.
        input: String,
        /// Why it was rejected.
        reason: String,
    },

    /// The configured KEK is not standard base64. The value itself is never echoed.
    #[error(
        "the KEK is not valid standard base64 (the value is not shown); \
             generate one with `openssl rand -base64 32`"
    )]
    KekNotBase64,

    /// The configured KEK decodes to the wrong number of bytes.
    #[error(
        "the KEK must decode to 32 bytes, got {got}; \
             generate one with `openssl rand -base64 32`"
    )]
    KekWrongLength {
        /// How many bytes the base64 text decoded to.
        got: usize,
    },

    /// The operating system's random number generator failed.
    #[error(
        "the operating system's random number generator failed: {reason}; \
             no key or nonce can be generated safely on this machine"
    )]
    RandomnessUnavailable {
        /// The error reported by the OS.
        reason: String,
    },

    /// The key was wrapped by a different KEK than the one this server holds.
    #[error(
        "root key {key_id} was wrapped by the KEK with fingerprint {wrapped_by}, \
             but this server's KEK has fingerprint {have}; configure the same KEK on every server"
    )]
    WrongKek {
        /// The key that could not be unwrapped.
        key_id: KeyId,
        /// Fingerprint of the KEK that wrapped it.
        wrapped_by: String,
        /// Fingerprint of the KEK this server holds.
        have: String,
    },

    /// The wrapped bytes do not have the shape AES-256-GCM output has.
    #[error("wrapped root key {key_id} is malformed: {reason}")]
    MalformedWrappedKey {
        /// The key whose wrapped form is malformed.
        key_id: KeyId,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Authenticated decryption failed: the ciphertext was altered, or it belongs to another key
    /// id, or the KEK has the right fingerprint but different bytes (a fingerprint collision).
    #[error(
        "root key {key_id} failed to unwrap: the ciphertext was altered or was wrapped for \
             another key id"
    )]
    UnwrapFailed {
        /// The key that could not be unwrapped.
        key_id: KeyId,
    },

    /// A key with this id is already in the keyring.
    #[error("root key {0} already exists in the keyring; generate a new key id")]
    DuplicateKey(KeyId),

    /// No key with this id is in the keyring.
    #[error("root key {0} not found in the keyring")]
    NotFound(KeyId),

    /// An operation needs the key to be in one state and it is in another.
    #[error("cannot {operation} root key {key_id}: it is {found}, expected {expected}")]
    UnexpectedState {
        /// The key the operation was applied to.
        key_id: KeyId,
        /// What was attempted, e.g. "promote".
        operation: &'static str,
        /// The state the operation requires.
        expected: KeyState,
        /// The state the key is in.
        found: KeyState,
    },

    /// A prepublished key must say when it becomes active.
    #[error("prepublished root key {0} has no publish time; set publish_time_ms")]
    MissingPublishTime(KeyId),

    /// The active key cannot be removed; it would leave nothing to sign with.
    #[error("root key {0} is active and cannot be removed; rotate first, then remove it")]
    ActiveKeyCannotBeRemoved(KeyId),

    /// The active key cannot be revoked; it would leave nothing to sign with.
    #[error("root key {0} is active and cannot be revoked; rotate first, then revoke it")]
    ActiveKeyCannotBeRevoked(KeyId),

    /// A key that is being rekeyed still protects data that has not been re-encrypted.
    #[error("root key {0} is being rekeyed; wait for the rekey to finish or remove with force")]
    KeyRekeying(KeyId),

    /// The key still signs live identities (or protects data) and force was not given.
    #[error("root key {0} is in use by live allocations; remove with force to orphan their tokens")]
    KeyInUse(KeyId),

    /// A keyring read from a snapshot has more than one active key.
    #[error("keyring has more than one active key ({first} and {second}); the snapshot is corrupt")]
    SeveralActiveKeys {
        /// The first active key found, in key-id order.
        first: KeyId,
        /// The second active key found.
        second: KeyId,
    },

    /// A keyring read from a snapshot files a key under another key's id.
    #[error("keyring entry {entry} holds root key {key_id}; the snapshot is corrupt")]
    KeyIdMismatch {
        /// The id the entry is filed under.
        entry: KeyId,
        /// The id inside the key's metadata.
        key_id: KeyId,
    },
}
