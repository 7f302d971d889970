//! The node-local side of the keyring: root keys unwrapped with this server's KEK, parsed once
//! into signing keys, the verifier over every published key, and the JWKS document.
//!
//! The state machine store tells the cache about every keyring change right after applying it
//! ([`KeyringObserver`]), so the cache always matches the applied state. A key this server's
//! KEK cannot unwrap makes the server not ready: it reports why, serves no JWKS (never a
//! partial one, guarantee 4), and cannot sign; it does not crash.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sigil_identity::{Jwks, SigningKey, Verifier};
use sigil_keyring::{Kek, KeyId, KeyState, Keyring};
use sigil_raft::KeyringObserver;

/// Unwrapped keys of the applied keyring.
pub struct KeyCache {
    kek: Option<Arc<Kek>>,
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    signers: HashMap<KeyId, Arc<SigningKey>>,
    active: Option<KeyId>,
    verifier: Arc<Verifier>,
    jwks: Option<Arc<Jwks>>,
    newest_create_time_ms: u64,
    /// Why this server cannot use the keyring, when it cannot.
    problem: Option<String>,
}

/// A point-in-time view for readers: consistent with one applied keyring.
#[derive(Clone)]
pub struct KeyView {
    /// The active key's signer, when there is an active key and it unwrapped.
    pub active: Option<Arc<SigningKey>>,
    /// Every published key.
    pub verifier: Arc<Verifier>,
    /// The JWKS, or `None` while the keyring is empty or cannot be unwrapped.
    pub jwks: Option<Arc<Jwks>>,
    /// Create time of the newest published key (for `Cache-Control`).
    pub newest_create_time_ms: u64,
    /// Why the server is not ready, if it is not.
    pub problem: Option<String>,
}

impl KeyCache {
    /// A cache that unwraps with `kek`; `None` means no KEK is configured, which is reported as
    /// the reason this server is not ready once the keyring has keys.
    pub fn new(kek: Option<Arc<Kek>>) -> Self {
        Self {
            kek,
            inner: RwLock::new(Inner::default()),
        }
    }

    /// The current view.
    pub fn view(&self) -> KeyView {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        KeyView {
            active: inner.active.and_then(|id| inner.signers.get(&id).cloned()),
            verifier: inner.verifier.clone(),
            jwks: inner.jwks.clone(),
            newest_create_time_ms: inner.newest_create_time_ms,
            problem: inner.problem.clone(),
        }
    }

    fn rebuild(&self, keyring: &Keyring, old: &HashMap<KeyId, Arc<SigningKey>>) -> Inner {
        let mut next = Inner::default();
        let mut problems = Vec::new();
        for key in keyring.published() {
            let key_id = key.meta.key_id;
            next.newest_create_time_ms = next.newest_create_time_ms.max(key.meta.create_time_ms);
            if key.meta.state == KeyState::Active {
                next.active = Some(key_id);
            }
            if let Some(signer) = old.get(&key_id) {
                next.signers.insert(key_id, signer.clone());
                continue;
            }
            let Some(kek) = &self.kek else {
                problems.push(format!("no KEK configured to unwrap key {key_id}"));
                continue;
            };
            match key.unwrap_material(kek) {
                Ok(material) => {
                    next.signers
                        .insert(key_id, Arc::new(SigningKey::new(key_id, &material)));
                }
                Err(err) => problems.push(err.to_string()),
            }
        }

        if problems.is_empty() {
            let keys = next
                .signers
                .values()
                .map(|s| (s.key_id(), s.verifying_key()));
            let keys: Vec<_> = keys.collect();
            next.verifier = Arc::new(Verifier::from_keys(keys.iter().copied()));
            if !keys.is_empty() {
                next.jwks = Some(Arc::new(Jwks::from_keys(keys)));
            }
        } else {
            // Serve nothing rather than a partial key set: a verifier holding a partial JWKS
            // would reject valid tokens, and a signer without the active key must not sign.
            next.signers.clear();
            next.active = None;
            next.problem = Some(problems.join("; "));
        }
        next
    }
}

impl KeyringObserver for KeyCache {
    fn keyring_changed(&self, keyring: &Keyring) {
        let old = self
            .inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .signers
            .clone();
        let next = self.rebuild(keyring, &old);
        match &next.problem {
            Some(problem) => tracing::error!(%problem, "keyring cannot be unwrapped; not ready"),
            None => tracing::info!(
                keys = next.signers.len(),
                active = ?next.active,
                "keyring applied"
            ),
        }
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = next;
    }
}

#[cfg(test)]
mod tests {
    use sigil_keyring::{KeyMaterial, RootKey, RootKeyMeta};

    use super::*;

    fn keyring_with_active(kek: &Kek) -> (Keyring, KeyId) {
        let id = KeyId::random();
        let key = RootKey::wrap(
            RootKeyMeta::new_active(id, 1_000),
            kek,
            &KeyMaterial::generate(),
        );
        let mut keyring = Keyring::default();
        keyring.insert_active(key).expect("first active key");
        (keyring, id)
    }

    #[test]
    fn a_matching_kek_unwraps_the_active_key_and_publishes_it() {
        let kek = Kek::generate();
        let (keyring, id) = keyring_with_active(&kek);
        let cache = KeyCache::new(Some(Arc::new(kek)));
        cache.keyring_changed(&keyring);

        let view = cache.view();
        assert_eq!(view.problem, None, "no problem with the right KEK");
        assert_eq!(
            view.active.map(|s| s.key_id()),
            Some(id),
            "the active key signs"
        );
        let jwks = view.jwks.expect("a JWKS is served");
        assert_eq!(jwks.keys.len(), 1, "one key published");
    }

    #[test]
    fn a_wrong_kek_leaves_the_server_not_ready_with_no_keys_served() {
        let (keyring, id) = keyring_with_active(&Kek::generate());
        let cache = KeyCache::new(Some(Arc::new(Kek::generate())));
        cache.keyring_changed(&keyring);

        let view = cache.view();
        let problem = view.problem.expect("a wrong KEK is a problem");
        assert!(
            problem.contains(&id.to_string()),
            "the problem names the key: {problem}"
        );
        assert!(view.active.is_none(), "nothing signs without the key");
        assert!(view.jwks.is_none(), "no partial JWKS is served");
    }

    #[test]
    fn a_missing_kek_is_reported_once_keys_exist() {
        let (keyring, _) = keyring_with_active(&Kek::generate());
        let cache = KeyCache::new(None);
        cache.keyring_changed(&keyring);
        let problem = cache.view().problem.expect("a missing KEK is a problem");
        assert!(
            problem.contains("no KEK configured"),
            "the problem says why: {problem}"
        );
    }
}
