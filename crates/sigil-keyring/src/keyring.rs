//! `Keyring`: the pure rules over the set of root keys.
//!
//! The state machine owns one `Keyring` inside its replicated state and calls these methods from
//! its apply functions; the leader's rotation timer calls the read-only questions
//! (`due_for_promotion`, `prepublish_due`, `gc_candidates`) and proposes the answers as entries.
//! Nothing here reads a clock or draws randomness: time arrives as arguments, so every server
//! applying the same entries reaches the same keyring.
//!
//! # Invariants
//!
//! 1. **At most one key is `Active`.** `insert_active` and `promote` demote the previous active
//!    key to `Inactive` in the same call; `from_keys` and deserialization refuse a set with two.
//! 2. **Once there is an active key there is always exactly one.** The active key cannot be
//!    removed (`remove`) or revoked (`revoke`); it leaves `Active` only by being demoted when
//!    another key becomes active.
//! 3. **Every `Prepublished` key has a publish time.** Checked by `insert_prepublished` and by
//!    `from_keys`.
//! 4. **Every entry is filed under its own key id.** Checked by `from_keys`.
//! 5. **A call that returns an error changes nothing.** Every mutating method validates before it
//!    writes.
//!
//! [`Keyring::check_invariants`] checks 1, 3 and 4 on demand; the unit tests and the property
//! test in `tests/keyring_invariants.rs` check all five after every operation.
//!
//! `Rekeying` is a state no rule here produces yet: full rotation (re-encrypting data under the
//! new key) is not implemented. A key in that state is kept, published, never collected, and
//! removed only with force. Adding full rotation means a `rotate_full` that moves the active and
//! inactive keys to `Rekeying`, and a `finish_rekey` that moves one back to `Inactive`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{KeyId, KeyState, KeyringError, RootKey, RootKeyMeta};

/// The replicated set of root keys and the rules for changing it. See the module invariants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keyring {
    keys: BTreeMap<KeyId, RootKey>,
}

impl Keyring {
    /// An empty keyring: the state before the first leader initializes it.
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// Build a keyring from existing keys (a snapshot, a test fixture), checking the invariants.
    pub fn from_keys(keys: impl IntoIterator<Item = RootKey>) -> Result<Keyring, KeyringError> {
        let mut map = BTreeMap::new();
        for key in keys {
            let key_id = key.key_id();
            if map.insert(key_id, key).is_some() {
                return Err(KeyringError::DuplicateKey(key_id));
            }
        }
        Keyring::from_map(map)
    }

    /// The key with this id, in any state.
    pub fn get(&self, key_id: &KeyId) -> Option<&RootKey> {
        self.keys.get(key_id)
    }

    /// Every key, in key-id order.
    pub fn iter(&self) -> impl Iterator<Item = &RootKey> {
        self.keys.values()
    }

    /// How many keys the keyring holds, in any state.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the keyring holds no keys at all (not yet initialized).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The one key that signs, if the keyring has been initialized.
    pub fn active(&self) -> Option<&RootKey> {
        self.keys
            .values()
            .find(|key| key.state() == KeyState::Active)
    }

    /// The keys whose public halves belong in the JWKS (every state but `Revoked`), in key-id
    /// order.
    pub fn published(&self) -> impl Iterator<Item = &RootKey> {
        self.keys.values().filter(|key| key.state().in_jwks())
    }

    /// The metadata of every key, oldest first (ties broken by key id), for `keyring list`.
    pub fn metas(&self) -> Vec<RootKeyMeta> {
        let mut metas: Vec<RootKeyMeta> = self.keys.values().map(|key| key.meta.clone()).collect();
        metas.sort_by_key(|meta| (meta.create_time_ms, meta.key_id));
        metas
    }

    /// Add a key that signs from now on; the previous active key becomes `Inactive` in the same
    /// call (invariant 1). Returns the id of the demoted key, if there was one.
    pub fn insert_active(&mut self, key: RootKey) -> Result<Option<KeyId>, KeyringError> {
        expect_state(&key, KeyState::Active, "insert as active")?;
        self.ensure_absent(key.key_id())?;

        let demoted = self.demote_active();
        self.keys.insert(key.key_id(), key);
        Ok(demoted)
    }

    /// Add a key that is published now and becomes active at its `publish_time_ms`.
    pub fn insert_prepublished(&mut self, key: RootKey) -> Result<(), KeyringError> {
        expect_state(&key, KeyState::Prepublished, "insert as prepublished")?;
        if key.meta.publish_time_ms.is_none() {
            return Err(KeyringError::MissingPublishTime(key.key_id()));
        }
        self.ensure_absent(key.key_id())?;

        self.keys.insert(key.key_id(), key);
        Ok(())
    }

    /// Make a prepublished key active, demoting the previous active key to `Inactive`. Returns
    /// the id of the demoted key, if there was one.
    ///
    /// The publish time is cleared, as it only means something while a key waits. Whether the
    /// key is due is the caller's question ([`Keyring::due_for_promotion`]); an operator may
    /// promote early.
    pub fn promote(&mut self, key_id: KeyId) -> Result<Option<KeyId>, KeyringError> {
        let key = self
            .keys
            .get(&key_id)
            .ok_or(KeyringError::NotFound(key_id))?;
        expect_state(key, KeyState::Prepublished, "promote")?;

        let demoted = self.demote_active();
        if let Some(key) = self.keys.get_mut(&key_id) {
            key.meta.state = KeyState::Active;
            key.meta.publish_time_ms = None;
        }
        Ok(demoted)
    }

    /// The prepublished key to promote at `now_ms`: the one with the smallest publish time, if
    /// that time has come. Ties are broken by key id so every leader picks the same key.
    pub fn due_for_promotion(&self, now_ms: u64) -> Option<KeyId> {
        self.keys
            .values()
            .filter(|key| key.state() == KeyState::Prepublished)
            .filter_map(|key| Some((key.meta.publish_time_ms?, key.key_id())))
            .filter(|(publish_time_ms, _)| *publish_time_ms <= now_ms)
            .min()
            .map(|(_, key_id)| key_id)
    }

    /// Whether scheduled rotation should prepublish a new key now, and if so its publish time.
    ///
    /// Nomad's rule: when no key is waiting and the active key is at least half the rotation
    /// threshold old, prepublish a key that activates when the active key reaches the full
    /// threshold. The publish time is measured from the active key's create time, not from now,
    /// because the timer may run late; it is never in the past.
    pub fn prepublish_due(&self, now_ms: u64, rotation_threshold_ms: u64) -> Option<u64> {
        if self
            .keys
            .values()
            .any(|key| key.state() == KeyState::Prepublished)
        {
            return None;
        }
        let created = self.active()?.meta.create_time_ms;

        let half_way = created.saturating_add(rotation_threshold_ms / 2);
        (half_way <= now_ms).then(|| created.saturating_add(rotation_threshold_ms).max(now_ms))
    }

    /// Remove a key for good; its tokens stop verifying everywhere.
    ///
    /// The active key is never removed (rotate first). A key in use by live allocations, or one
    /// still being rekeyed, is removed only with `force`. `in_use` is the caller's answer, since
    /// allocations live outside the keyring.
    pub fn remove(
        &mut self,
        key_id: KeyId,
        force: bool,
        in_use: bool,
    ) -> Result<RootKey, KeyringError> {
        let key = self
            .keys
            .get(&key_id)
            .ok_or(KeyringError::NotFound(key_id))?;
        match key.state() {
            KeyState::Active => return Err(KeyringError::ActiveKeyCannotBeRemoved(key_id)),
            KeyState::Rekeying if !force => return Err(KeyringError::KeyRekeying(key_id)),
            _ if in_use && !force => return Err(KeyringError::KeyInUse(key_id)),
            _ => {}
        }

        self.keys
            .remove(&key_id)
            .ok_or(KeyringError::NotFound(key_id))
    }

    /// Withdraw a key from the JWKS without deleting it, so its tokens stop verifying but the
    /// record stays for audit. Revoking a revoked key is a no-op, so a replayed entry is harmless.
    pub fn revoke(&mut self, key_id: KeyId) -> Result<(), KeyringError> {
        let key = self
            .keys
            .get_mut(&key_id)
            .ok_or(KeyringError::NotFound(key_id))?;
        if key.state() == KeyState::Active {
            return Err(KeyringError::ActiveKeyCannotBeRevoked(key_id));
        }

        key.meta.state = KeyState::Revoked;
        Ok(())
    }

    /// The keys garbage collection should remove at `now_ms` (Nomad's rule, section 2.6).
    ///
    /// A key qualifies when it is `Inactive` (or `Revoked`, which like Nomad's deprecated state
    /// is out of the JWKS), was created more than `rotation + gc` thresholds ago, and `in_use`
    /// says no live allocation depends on it. Age is measured from the create time, not from
    /// when the key stopped signing. Identities with a TTL are protected only by this age rule,
    /// which assumes TTLs are shorter than the rotation threshold.
    pub fn gc_candidates(
        &self,
        now_ms: u64,
        rotation_threshold_ms: u64,
        gc_threshold_ms: u64,
        in_use: impl Fn(KeyId) -> bool,
    ) -> Vec<KeyId> {
        let min_age_ms = rotation_threshold_ms.saturating_add(gc_threshold_ms);
        self.keys
            .values()
            .filter(|key| matches!(key.state(), KeyState::Inactive | KeyState::Revoked))
            .filter(|key| key.meta.create_time_ms.saturating_add(min_age_ms) < now_ms)
            .map(RootKey::key_id)
            .filter(|key_id| !in_use(*key_id))
            .collect()
    }

    /// Check invariants 1, 3 and 4. The others are properties of the methods, not of a state.
    pub fn check_invariants(&self) -> Result<(), KeyringError> {
        let mut active = None;
        for (entry, key) in &self.keys {
            if *entry != key.key_id() {
                return Err(KeyringError::KeyIdMismatch {
                    entry: *entry,
                    key_id: key.key_id(),
                });
            }
            if key.state() == KeyState::Prepublished && key.meta.publish_time_ms.is_none() {
                return Err(KeyringError::MissingPublishTime(*entry));
            }
            if key.state() == KeyState::Active {
                if let Some(first) = active {
                    return Err(KeyringError::SeveralActiveKeys {
                        first,
                        second: *entry,
                    });
                }
                active = Some(*entry);
            }
        }
        Ok(())
    }

    fn from_map(keys: BTreeMap<KeyId, RootKey>) -> Result<Keyring, KeyringError> {
        let keyring = Keyring { keys };
        keyring.check_invariants()?;
        Ok(keyring)
    }

    fn ensure_absent(&self, key_id: KeyId) -> Result<(), KeyringError> {
        if self.keys.contains_key(&key_id) {
            return Err(KeyringError::DuplicateKey(key_id));
        }
        Ok(())
    }

    /// Demote the active key, if any, to `Inactive` and return its id.
    fn demote_active(&mut self) -> Option<KeyId> {
        let active = self
            .keys
            .values_mut()
            .find(|key| key.state() == KeyState::Active)?;
        active.meta.state = KeyState::Inactive;
        Some(active.key_id())
    }
}

/// A keyring serializes as a map from key id to root key (it is part of state-machine
/// snapshots).
impl Serialize for Keyring {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.keys.serialize(serializer)
    }
}

/// Deserializing checks the invariants, so a corrupt snapshot is refused loudly instead of
/// installing a keyring with two signing keys.
impl<'de> Deserialize<'de> for Keyring {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Keyring, D::Error> {
        let keys = BTreeMap::<KeyId, RootKey>::deserialize(deserializer)?;
        Keyring::from_map(keys).map_err(serde::de::Error::custom)
    }
}

fn expect_state(
    key: &RootKey,
    expected: KeyState,
    operation: &'static str,
) -> Result<(), KeyringError> {
    if key.state() != expected {
        return Err(KeyringError::UnexpectedState {
            key_id: key.key_id(),
            operation,
            expected,
            found: key.state(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WrappedKey;
    use uuid::Uuid;

    const HOUR: u64 = 3_600_000;
    const DAY: u64 = 24 * HOUR;
    const ROTATION: u64 = 30 * DAY;
    const GC: u64 = HOUR;

    fn id(n: u128) -> KeyId {
        KeyId(Uuid::from_u128(n))
    }

    /// A root key with placeholder wrapped bytes: these rules never look inside them.
    fn key(n: u128, state: KeyState, create_time_ms: u64, publish: Option<u64>) -> RootKey {
        RootKey {
            meta: RootKeyMeta {
                key_id: id(n),
                algorithm: crate::Algorithm::EdDSA,
                state,
                create_time_ms,
                publish_time_ms: publish,
            },
            wrapped: WrappedKey {
                kek_fingerprint: "0000000000000000".into(),
                nonce: vec![0; 12],
                ciphertext: vec![0; 48],
            },
        }
    }

    fn active(n: u128, create_time_ms: u64) -> RootKey {
        key(n, KeyState::Active, create_time_ms, None)
    }

    fn prepublished(n: u128, create_time_ms: u64, publish_time_ms: u64) -> RootKey {
        key(
            n,
            KeyState::Prepublished,
            create_time_ms,
            Some(publish_time_ms),
        )
    }

    fn state_of(keyring: &Keyring, n: u128) -> KeyState {
        keyring
            .get(&id(n))
            .expect("the key is in the keyring")
            .state()
    }

    /// Invariant 1 through a rotation: the new key is active and the old one inactive at once.
    #[test]
    fn inserting_an_active_key_demotes_the_previous_one_in_the_same_call() {
        let mut keyring = Keyring::new();

        let first = keyring
            .insert_active(active(1, 0))
            .expect("the first key is accepted");
        assert_eq!(first, None, "nothing to demote on an empty keyring");

        let demoted = keyring
            .insert_active(active(2, DAY))
            .expect("the second key is accepted");
        assert_eq!(demoted, Some(id(1)), "the call reports the demoted key");
        assert_eq!(
            state_of(&keyring, 1),
            KeyState::Inactive,
            "the old key is inactive"
        );
        assert_eq!(
            keyring.active().map(RootKey::key_id),
            Some(id(2)),
            "the new key signs"
        );
        assert_eq!(
            keyring.check_invariants(),
            Ok(()),
            "invariants hold after rotation"
        );
    }

    /// Insert paths refuse keys in the wrong state or with a reused id, and change nothing.
    #[test]
    fn inserts_refuse_wrong_state_duplicates_and_missing_publish_time() {
        let mut keyring = Keyring::from_keys([active(1, 0)]).expect("valid keyring");
        let before = keyring.clone();

        let err = keyring
            .insert_active(prepublished(2, 0, DAY))
            .expect_err("wrong state");
        assert_eq!(
            err,
            KeyringError::UnexpectedState {
                key_id: id(2),
                operation: "insert as active",
                expected: KeyState::Active,
                found: KeyState::Prepublished,
            },
            "insert_active names the state it found"
        );
        assert_eq!(
            keyring.insert_active(active(1, 5)),
            Err(KeyringError::DuplicateKey(id(1))),
            "a reused id is refused"
        );
        assert_eq!(
            keyring.insert_prepublished(key(3, KeyState::Prepublished, 0, None)),
            Err(KeyringError::MissingPublishTime(id(3))),
            "a prepublished key needs a publish time"
        );
        assert!(
            matches!(
                keyring.insert_prepublished(active(4, 0)),
                Err(KeyringError::UnexpectedState {
                    found: KeyState::Active,
                    ..
                })
            ),
            "insert_prepublished refuses an active key"
        );
        assert_eq!(keyring, before, "no refused insert changed the keyring");
    }

    /// Scheduled rotation end to end: prepublish, promote at the publish time, demote the old.
    #[test]
    fn promoting_a_prepublished_key_makes_it_the_only_active_key() {
        let mut keyring = Keyring::from_keys([active(1, 0)]).expect("valid keyring");
        keyring
            .insert_prepublished(prepublished(2, 15 * DAY, 30 * DAY))
            .expect("accepted");

        assert_eq!(
            state_of(&keyring, 2),
            KeyState::Prepublished,
            "waiting key is prepublished"
        );
        assert_eq!(
            keyring.published().count(),
            2,
            "both keys are already in the JWKS"
        );

        let demoted = keyring
            .promote(id(2))
            .expect("a prepublished key can be promoted");
        assert_eq!(demoted, Some(id(1)), "the old active key is demoted");
        assert_eq!(
            state_of(&keyring, 2),
            KeyState::Active,
            "the promoted key signs"
        );
        assert_eq!(
            state_of(&keyring, 1),
            KeyState::Inactive,
            "the old key only verifies"
        );
        let publish = keyring.get(&id(2)).and_then(|key| key.meta.publish_time_ms);
        assert_eq!(publish, None, "the publish time is cleared once active");
    }

    /// Only prepublished keys are promoted; anything else is an error that changes nothing.
    #[test]
    fn promoting_anything_but_a_prepublished_key_is_refused() {
        let mut keyring =
            Keyring::from_keys([active(1, 0), key(2, KeyState::Inactive, 0, None)]).expect("ok");
        let before = keyring.clone();

        assert_eq!(
            keyring.promote(id(9)),
            Err(KeyringError::NotFound(id(9))),
            "unknown key"
        );
        assert!(
            matches!(
                keyring.promote(id(2)),
                Err(KeyringError::UnexpectedState {
                    found: KeyState::Inactive,
                    ..
                })
            ),
            "an inactive key cannot be promoted"
        );
        assert!(
            matches!(
                keyring.promote(id(1)),
                Err(KeyringError::UnexpectedState {
                    found: KeyState::Active,
                    ..
                })
            ),
            "the active key cannot be promoted again"
        );
        assert_eq!(keyring, before, "refused promotions changed nothing");
    }

    /// The earliest due key is chosen; a key whose time has not come is not.
    #[test]
    fn due_for_promotion_picks_the_earliest_publish_time_that_has_passed() {
        let keyring = Keyring::from_keys([
            active(1, 0),
            prepublished(2, 0, 20 * DAY),
            prepublished(3, 0, 10 * DAY),
        ])
        .expect("valid keyring");

        assert_eq!(
            keyring.due_for_promotion(9 * DAY),
            None,
            "nothing is due before day 10"
        );
        assert_eq!(
            keyring.due_for_promotion(10 * DAY),
            Some(id(3)),
            "due exactly at its time"
        );
        assert_eq!(
            keyring.due_for_promotion(25 * DAY),
            Some(id(3)),
            "the earliest goes first"
        );
    }

    /// Nomad's timeline: prepublish at half the threshold, activating at the full threshold
    /// measured from the active key's create time; never in the past; never two waiting keys.
    #[test]
    fn prepublish_is_due_at_half_the_rotation_threshold() {
        let created = 100 * DAY;
        let mut keyring = Keyring::from_keys([active(1, created)]).expect("valid keyring");

        assert_eq!(
            keyring.prepublish_due(created + 15 * DAY - 1, ROTATION),
            None,
            "not due before half the threshold"
        );
        assert_eq!(
            keyring.prepublish_due(created + 15 * DAY, ROTATION),
            Some(created + ROTATION),
            "due at half the threshold, publishing at create time plus the threshold"
        );
        assert_eq!(
            keyring.prepublish_due(created + 40 * DAY, ROTATION),
            Some(created + 40 * DAY),
            "a late timer publishes now, never in the past"
        );

        keyring
            .insert_prepublished(prepublished(2, created + 15 * DAY, created + ROTATION))
            .expect("accepted");
        assert_eq!(
            keyring.prepublish_due(created + 20 * DAY, ROTATION),
            None,
            "no second key is prepublished while one waits"
        );
        assert_eq!(
            Keyring::new().prepublish_due(u64::MAX, ROTATION),
            None,
            "no active key"
        );
    }

    /// Early in the epoch (now below half the threshold) nothing is due: no underflow.
    #[test]
    fn prepublish_is_not_due_for_a_fresh_key_near_time_zero() {
        let keyring = Keyring::from_keys([active(1, 0)]).expect("valid keyring");

        assert_eq!(
            keyring.prepublish_due(DAY, ROTATION),
            None,
            "a one-day-old key is not due"
        );
    }

    /// Nomad's Delete checks, in order: exists, not active, not in use unless forced.
    #[test]
    fn remove_refuses_unknown_active_and_in_use_keys() {
        let mut keyring = Keyring::from_keys([active(1, 0), key(2, KeyState::Inactive, 0, None)])
            .expect("valid keyring");
        let before = keyring.clone();

        assert_eq!(
            keyring.remove(id(9), true, false),
            Err(KeyringError::NotFound(id(9))),
            "an unknown key is not found"
        );
        assert_eq!(
            keyring.remove(id(1), true, false),
            Err(KeyringError::ActiveKeyCannotBeRemoved(id(1))),
            "the active key is refused even with force"
        );
        assert_eq!(
            keyring.remove(id(2), false, true),
            Err(KeyringError::KeyInUse(id(2))),
            "a key in use is refused without force"
        );
        assert_eq!(keyring, before, "refused removals changed nothing");

        let removed = keyring
            .remove(id(2), true, true)
            .expect("force removes a key in use");
        assert_eq!(removed.key_id(), id(2), "the removed key is returned");
        assert!(
            keyring.get(&id(2)).is_none(),
            "and is gone from the keyring"
        );
    }

    /// The active key's error tells the operator to rotate first.
    #[test]
    fn removing_the_active_key_says_rotate_first() {
        let mut keyring = Keyring::from_keys([active(1, 0)]).expect("valid keyring");

        let err = keyring.remove(id(1), false, false).expect_err("refused");
        assert!(
            err.to_string().contains("rotate first"),
            "the message says what to do: {err}"
        );
    }

    /// A key under rekey still protects data: only force removes it.
    #[test]
    fn a_rekeying_key_is_removed_only_with_force() {
        let mut keyring =
            Keyring::from_keys([key(1, KeyState::Rekeying, 0, None)]).expect("valid keyring");

        assert_eq!(
            keyring.remove(id(1), false, false),
            Err(KeyringError::KeyRekeying(id(1))),
            "a rekeying key is refused without force"
        );
        assert!(
            keyring.remove(id(1), true, false).is_ok(),
            "force removes a rekeying key"
        );
    }

    /// Revoking takes a key out of the JWKS; the active key cannot be revoked.
    #[test]
    fn revoke_removes_a_key_from_the_jwks_but_never_the_active_one() {
        let mut keyring =
            Keyring::from_keys([active(1, 0), key(2, KeyState::Inactive, 0, None)]).expect("ok");

        keyring
            .revoke(id(2))
            .expect("an inactive key can be revoked");
        assert_eq!(
            state_of(&keyring, 2),
            KeyState::Revoked,
            "the key is revoked"
        );
        let published: Vec<KeyId> = keyring.published().map(RootKey::key_id).collect();
        assert_eq!(published, vec![id(1)], "a revoked key leaves the JWKS");

        assert_eq!(
            keyring.revoke(id(2)),
            Ok(()),
            "revoking twice is a harmless no-op"
        );
        assert_eq!(
            keyring.revoke(id(1)),
            Err(KeyringError::ActiveKeyCannotBeRevoked(id(1))),
            "the active key cannot be revoked"
        );
        assert_eq!(
            keyring.revoke(id(9)),
            Err(KeyringError::NotFound(id(9))),
            "unknown key"
        );
    }

    /// Nomad section 2.6: old enough (from create time), inactive, and not in use.
    #[test]
    fn gc_collects_only_old_unused_inactive_or_revoked_keys() {
        let now = 100 * DAY;
        let old = now - ROTATION - GC - 1;
        let keyring = Keyring::from_keys([
            active(1, 0),
            key(2, KeyState::Inactive, old, None),
            key(3, KeyState::Inactive, old + 1, None),
            key(4, KeyState::Inactive, old, None),
            key(5, KeyState::Rekeying, old, None),
            prepublished(6, old, now + DAY),
            key(7, KeyState::Revoked, old, None),
        ])
        .expect("valid keyring");

        let candidates = keyring.gc_candidates(now, ROTATION, GC, |key_id| key_id == id(4));

        assert_eq!(
            candidates,
            vec![id(2), id(7)],
            "only key 2 (inactive, old, unused) and key 7 (revoked, old) qualify: 1 is active, \
             3 is exactly at the age limit, 4 is in use, 5 is rekeying, 6 is prepublished"
        );
    }

    /// metas() is what `keyring list` prints: oldest first.
    #[test]
    fn metas_are_sorted_by_create_time() {
        let keyring = Keyring::from_keys([
            active(1, 30),
            key(2, KeyState::Inactive, 10, None),
            key(3, KeyState::Inactive, 20, None),
        ])
        .expect("valid keyring");

        let order: Vec<KeyId> = keyring.metas().iter().map(|meta| meta.key_id).collect();
        assert_eq!(
            order,
            vec![id(2), id(3), id(1)],
            "metas are ordered by create time"
        );
    }

    /// A keyring is part of snapshots: JSON roundtrips, and a corrupt snapshot is refused.
    #[test]
    fn keyring_json_roundtrips_and_a_snapshot_with_two_active_keys_is_refused() {
        let keyring =
            Keyring::from_keys([active(1, 0), prepublished(2, 0, DAY)]).expect("valid keyring");

        let json = serde_json::to_string(&keyring).expect("serializes");
        let back: Keyring = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, keyring, "the keyring survives a JSON roundtrip");

        let mut corrupt: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        corrupt[id(2).to_string()]["meta"]["state"] = "active".into();
        let err = serde_json::from_value::<Keyring>(corrupt).expect_err("two active keys");
        assert!(
            err.to_string().contains("more than one active key"),
            "clear error: {err}"
        );
    }

    /// from_keys checks the invariants a fixture or snapshot could break.
    #[test]
    fn from_keys_refuses_sets_that_break_the_invariants() {
        assert_eq!(
            Keyring::from_keys([active(1, 0), active(2, 0)]),
            Err(KeyringError::SeveralActiveKeys {
                first: id(1),
                second: id(2)
            }),
            "two active keys are refused"
        );
        assert_eq!(
            Keyring::from_keys([active(1, 0), active(1, 5)]),
            Err(KeyringError::DuplicateKey(id(1))),
            "a repeated id is refused"
        );
        assert_eq!(
            Keyring::from_keys([key(3, KeyState::Prepublished, 0, None)]),
            Err(KeyringError::MissingPublishTime(id(3))),
            "a prepublished key without a publish time is refused"
        );

        let mut map = BTreeMap::new();
        map.insert(id(1), active(2, 0));
        assert_eq!(
            Keyring::from_map(map),
            Err(KeyringError::KeyIdMismatch {
                entry: id(1),
                key_id: id(2)
            }),
            "an entry filed under another id is refused"
        );
    }
}
