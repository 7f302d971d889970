//! `RootKeyMeta` and `RootKey`: a root key as it is replicated through Raft.
//!
//! The leader builds a `RootKey` when it rotates (generate material, wrap it, propose); the state
//! machine stores it in the [`Keyring`](crate::Keyring); `keyring list` shows its metadata.

use serde::{Deserialize, Serialize};

use crate::{Algorithm, Kek, KeyId, KeyMaterial, KeyState, WrappedKey};

/// The non-secret description of a root key. Times are unix milliseconds chosen by the leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootKeyMeta {
    /// The key's id, also the JWT `kid`.
    pub key_id: KeyId,
    /// The signing algorithm.
    pub algorithm: Algorithm,
    /// Where the key is in its life.
    pub state: KeyState,
    /// When the key was generated. Rotation and GC ages are measured from here.
    pub create_time_ms: u64,
    /// When a prepublished key becomes active. Cleared when it does.
    pub publish_time_ms: Option<u64>,
}

/// A root key as replicated: metadata plus material wrapped by the KEK.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootKey {
    /// The key's metadata.
    pub meta: RootKeyMeta,
    /// The key's material, encrypted under a KEK with the key id as associated data.
    pub wrapped: WrappedKey,
}

impl RootKeyMeta {
    /// Metadata for a key that signs from the moment it is applied (keyring init, `rotate now`).
    pub fn new_active(key_id: KeyId, create_time_ms: u64) -> RootKeyMeta {
        RootKeyMeta {
            key_id,
            algorithm: Algorithm::EdDSA,
            state: KeyState::Active,
            create_time_ms,
            publish_time_ms: None,
        }
    }

    /// Metadata for a key published now that becomes active at `publish_time_ms`.
    pub fn new_prepublished(key_id: KeyId, create_time_ms: u64, publish_time_ms: u64) -> Self {
        RootKeyMeta {
            key_id,
            algorithm: Algorithm::EdDSA,
            state: KeyState::Prepublished,
            create_time_ms,
            publish_time_ms: Some(publish_time_ms),
        }
    }
}

impl RootKey {
    /// Wrap `material` under `kek` for the key described by `meta`.
    ///
    /// # Panics
    ///
    /// If the OS random number generator fails to produce a nonce; see [`Kek::wrap`].
    pub fn wrap(meta: RootKeyMeta, kek: &Kek, material: &KeyMaterial) -> RootKey {
        let wrapped = kek.wrap(meta.key_id, material);
        RootKey { meta, wrapped }
    }

    /// The key's id.
    pub fn key_id(&self) -> KeyId {
        self.meta.key_id
    }

    /// The key's state.
    pub fn state(&self) -> KeyState {
        self.meta.state
    }

    /// Recover the key's material with this server's KEK.
    pub fn unwrap_material(&self, kek: &Kek) -> Result<KeyMaterial, crate::KeyringError> {
        kek.unwrap(self.meta.key_id, &self.wrapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A root key is what Raft carries: its JSON must roundtrip and still unwrap afterwards.
    #[test]
    fn root_key_roundtrips_through_json_and_still_unwraps() {
        let kek = Kek::generate();
        let material = KeyMaterial::generate();
        let key = RootKey::wrap(
            RootKeyMeta::new_prepublished(KeyId::random(), 10, 20),
            &kek,
            &material,
        );

        let json = serde_json::to_string(&key).expect("serializes");
        let back: RootKey = serde_json::from_str(&json).expect("deserializes");

        assert_eq!(back, key, "the root key survives a JSON roundtrip");
        assert!(
            json.contains("\"state\":\"prepublished\""),
            "state is snake_case: {json}"
        );
        assert!(
            json.contains("\"algorithm\":\"EdDSA\""),
            "algorithm is EdDSA: {json}"
        );
        let unwrapped = back
            .unwrap_material(&kek)
            .expect("the KEK unwraps the roundtripped key");
        assert_eq!(
            unwrapped.as_bytes(),
            material.as_bytes(),
            "to the original material"
        );
    }

    /// Constructors set the state and publish time the keyring rules require.
    #[test]
    fn constructors_set_state_and_publish_time() {
        let id = KeyId::random();

        let active = RootKeyMeta::new_active(id, 5);
        assert_eq!(
            (active.state, active.publish_time_ms),
            (KeyState::Active, None),
            "active"
        );

        let pre = RootKeyMeta::new_prepublished(id, 5, 9);
        assert_eq!(
            (pre.state, pre.publish_time_ms),
            (KeyState::Prepublished, Some(9)),
            "pre"
        );
    }
}
