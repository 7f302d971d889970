//! The error types of `sigil-identity`: one for signing and documents, one for verification.
//!
//! The server maps `VerifyError` to `Unauthenticated` (and `UnknownKey` to a wait for the leader's
//! commit index first); `IdentityError` means a bug or a bad JWKS and maps to `Internal` or
//! `InvalidArgument`.

use sigil_keyring::KeyId;

/// What can go wrong when signing or when reading a JWKS document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The claim set could not be encoded as JSON (not expected with `IdentityClaims`).
    #[error("identity claims could not be encoded as JSON: {0}")]
    ClaimsNotEncodable(String),

    /// A JWK is not an Ed25519 public key this crate can use.
    #[error("JWK {kid} is not a usable Ed25519 signing key: {reason}")]
    InvalidJwk {
        /// The JWK's `kid`.
        kid: KeyId,
        /// What is wrong with it.
        reason: String,
    },
}

/// Why a token was rejected. Each variant names the condition; `Malformed` names the part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The token is not a well-formed compact JWS; the text names the part that is wrong.
    #[error("malformed token: {0}")]
    Malformed(String),

    /// The header has no `kid`, so there is no key to check the signature with.
    #[error("token header has no kid (key id)")]
    MissingKeyId,

    /// The header's `alg` is not `EdDSA`, the only algorithm Sigil signs with.
    #[error("token algorithm {0:?} is not supported; Sigil tokens use EdDSA")]
    UnsupportedAlgorithm(String),

    /// No key with this id is known (yet): it may not have replicated here, or it was removed.
    #[error("token was signed by unknown key {0}")]
    UnknownKey(KeyId),

    /// The signature does not match the header and claims under the named key.
    #[error("token signature is invalid")]
    BadSignature,

    /// The token's `exp` is more than the leeway in the past.
    #[error("token expired at {exp} (now {now}, leeway 60 s)")]
    Expired {
        /// The token's `exp`, unix seconds.
        exp: u64,
        /// The verifier's clock, unix seconds.
        now: u64,
    },

    /// The token's `nbf` is more than the leeway in the future.
    #[error("token is not valid before {nbf} (now {now}, leeway 60 s)")]
    NotYetValid {
        /// The token's `nbf`, unix seconds.
        nbf: u64,
        /// The verifier's clock, unix seconds.
        now: u64,
    },
}
