//! `KeyMaterial`, the 32 secret bytes of a root key, and the crate's one source of randomness.
//!
//! The leader generates material when it rotates; every server gets it back by unwrapping on
//! apply, and the identity crate turns it into an Ed25519 signing key. It never leaves memory in
//! plaintext: it has no `Serialize`, its `Debug` is redacted and it is zeroed on drop.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::KeyringError;

/// The 32 secret bytes of a root key: the Ed25519 seed, and the AES-256-GCM key for data.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KeyMaterial {
    bytes: [u8; KeyMaterial::LEN],
}

impl KeyMaterial {
    /// The length of root key material in bytes.
    pub const LEN: usize = 32;

    /// Fresh material from the operating system's CSPRNG.
    ///
    /// # Panics
    ///
    /// If the OS random number generator fails. A machine that cannot produce randomness cannot
    /// issue keys safely, and continuing with weak bytes would be worse than stopping; use
    /// [`KeyMaterial::try_generate`] to handle the failure instead.
    pub fn generate() -> KeyMaterial {
        KeyMaterial::try_generate().expect("the OS random number generator failed")
    }

    /// Fresh material from the operating system's CSPRNG, or the reason there is none.
    pub fn try_generate() -> Result<KeyMaterial, KeyringError> {
        let mut material = KeyMaterial::from_bytes([0; KeyMaterial::LEN]);
        fill_random(&mut material.bytes)?;
        Ok(material)
    }

    /// Material from known bytes: for tests and for the unwrap path.
    pub fn from_bytes(bytes: [u8; KeyMaterial::LEN]) -> KeyMaterial {
        KeyMaterial { bytes }
    }

    /// The secret bytes. Callers must not copy them anywhere that outlives this value.
    pub fn as_bytes(&self) -> &[u8; KeyMaterial::LEN] {
        &self.bytes
    }

    /// Write access for unwrapping in place, so the plaintext never sits in a second buffer.
    pub(crate) fn as_mut_bytes(&mut self) -> &mut [u8; KeyMaterial::LEN] {
        &mut self.bytes
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyMaterial(redacted)")
    }
}

/// Fill `buf` from the OS CSPRNG. Every key, KEK and nonce in this crate comes from here.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), KeyringError> {
    getrandom::fill(buf).map_err(|e| KeyringError::RandomnessUnavailable {
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log line that prints a struct holding material must not print the bytes.
    #[test]
    fn debug_never_prints_the_bytes() {
        let material = KeyMaterial::from_bytes([0xAB; 32]);

        let printed = format!("{material:?}");
        assert_eq!(
            printed, "KeyMaterial(redacted)",
            "Debug is a fixed redacted string"
        );
        assert!(
            !printed.contains("171"),
            "no byte value appears in Debug output"
        );
    }

    /// Two generated keys differ and neither is all zeroes, so the CSPRNG was actually used.
    #[test]
    fn generate_draws_fresh_bytes_each_time() {
        let a = KeyMaterial::generate();
        let b = KeyMaterial::generate();

        assert_ne!(a.as_bytes(), b.as_bytes(), "two generated keys differ");
        assert_ne!(
            a.as_bytes(),
            &[0; 32],
            "generated material is not all zeroes"
        );
    }

    /// `from_bytes` keeps exactly what it was given, which unwrapping relies on.
    #[test]
    fn from_bytes_keeps_the_given_bytes() {
        let bytes: [u8; 32] = std::array::from_fn(|i| i as u8);

        assert_eq!(
            KeyMaterial::from_bytes(bytes).as_bytes(),
            &bytes,
            "bytes are kept verbatim"
        );
    }
}
