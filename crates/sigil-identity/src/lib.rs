//! Workload-identity claims, the signer, the verifier and JWKS documents.
//!
//! The leader builds [`IdentityClaims`] from [`WorkloadClaims`] and signs them with a
//! [`SigningKey`] made from the active root key; every server verifies with a [`Verifier`] over
//! its published keys and serves [`Jwks`] and [`OidcDiscovery`] documents. Tokens are compact
//! JWS with the header `{"alg":"EdDSA","kid":"<key id>","typ":"JWT"}` and Nomad's claim names.
//! The clock is always an argument: nothing here reads the time, does I/O or draws randomness.

mod claims;
mod error;
mod jwks;
mod oidc;
mod signer;
mod verifier;

pub use claims::{Audience, IdentityClaims, Workload, WorkloadClaims};
pub use error::{IdentityError, VerifyError};
pub use jwks::{JWKS_MIN_MAX_AGE, Jwk, Jwks, jwks_max_age};
pub use oidc::OidcDiscovery;
pub use signer::{SignedIdentity, SigningKey};
pub use verifier::{CLOCK_LEEWAY_SECS, MAX_TOKEN_LEN, Verifier, peek_key_id};

/// Re-exported so callers can name key types without depending on `ed25519-dalek` directly.
pub use ed25519_dalek::VerifyingKey;
