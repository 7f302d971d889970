//! Root keys, key states, rotation rules and KEK wrapping; pure, no I/O.
//!
//! The state machine (`sigil-state`) keeps a [`Keyring`] in its replicated state and applies
//! rotation, removal and revocation through it; every server unwraps [`RootKey`]s with its own
//! [`Kek`]; the identity crate turns [`KeyMaterial`] into Ed25519 signing keys. Nothing here
//! reads a clock or does I/O. Randomness is drawn only by the explicit `generate` constructors
//! and by wrapping (for the nonce), which only the leader calls.

mod error;
mod kek;
mod key_id;
mod keyring;
mod material;
mod root_key;
mod state;

pub use error::KeyringError;
pub use kek::{Kek, WrappedKey};
pub use key_id::KeyId;
pub use keyring::Keyring;
pub use material::KeyMaterial;
pub use root_key::{RootKey, RootKeyMeta};
pub use state::{Algorithm, KeyState};
pub use zeroize::Zeroizing;
