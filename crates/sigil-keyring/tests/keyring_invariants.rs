//! Property test: the keyring's numbered invariants hold after any sequence of operations.
//!
//! Runs random sequences of every mutating rule (rotate, prepublish, promote, remove, revoke,
//! garbage-collect, and deliberately bad calls) against one `Keyring` and checks, after each
//! step, the invariants listed at the top of `src/keyring.rs`.

use proptest::prelude::*;
use sigil_keyring::{Algorithm, KeyId, KeyState, Keyring, RootKey, RootKeyMeta, WrappedKey};
use uuid::Uuid;

/// One call against the keyring. Indexes pick an existing key (modulo the count), so most
/// calls hit real keys; an index into an empty keyring names an unknown key.
#[derive(Clone, Debug)]
enum Op {
    InsertActive {
        create: u64,
    },
    InsertPrepublished {
        create: u64,
        publish: u64,
    },
    InsertDuplicate {
        pick: usize,
    },
    Promote {
        pick: usize,
    },
    Remove {
        pick: usize,
        force: bool,
        in_use: bool,
    },
    Revoke {
        pick: usize,
    },
    CollectGarbage {
        now: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..1_000u64).prop_map(|create| Op::InsertActive { create }),
        (0..1_000u64, 0..2_000u64)
            .prop_map(|(create, publish)| Op::InsertPrepublished { create, publish }),
        any::<usize>().prop_map(|pick| Op::InsertDuplicate { pick }),
        any::<usize>().prop_map(|pick| Op::Promote { pick }),
        (any::<usize>(), any::<bool>(), any::<bool>()).prop_map(|(pick, force, in_use)| {
            Op::Remove {
                pick,
                force,
                in_use,
            }
        }),
        any::<usize>().prop_map(|pick| Op::Revoke { pick }),
        (0..3_000u64).prop_map(|now| Op::CollectGarbage { now }),
    ]
}

fn root_key(key_id: KeyId, state: KeyState, create: u64, publish: Option<u64>) -> RootKey {
    RootKey {
        meta: RootKeyMeta {
            key_id,
            algorithm: Algorithm::EdDSA,
            state,
            create_time_ms: create,
            publish_time_ms: publish,
        },
        wrapped: WrappedKey {
            kek_fingerprint: "0000000000000000".into(),
            nonce: vec![0; 12],
            ciphertext: vec![0; 48],
        },
    }
}

fn pick(keyring: &Keyring, pick: usize) -> KeyId {
    let ids: Vec<KeyId> = keyring.iter().map(RootKey::key_id).collect();
    match ids.len() {
        0 => KeyId(Uuid::from_u128(u128::MAX)),
        n => ids[pick % n],
    }
}

/// Apply one op; returns whether it succeeded.
fn apply(keyring: &mut Keyring, op: &Op, next_id: &mut u128) -> bool {
    let mut fresh = || {
        *next_id += 1;
        KeyId(Uuid::from_u128(*next_id))
    };
    match *op {
        Op::InsertActive { create } => {
            let key_id = fresh();
            let ok = keyring
                .insert_active(root_key(key_id, KeyState::Active, create, None))
                .is_ok();
            if ok {
                assert_eq!(
                    keyring.active().map(RootKey::key_id),
                    Some(key_id),
                    "new key signs"
                );
            }
            ok
        }
        Op::InsertPrepublished { create, publish } => {
            let key = root_key(fresh(), KeyState::Prepublished, create, Some(publish));
            keyring.insert_prepublished(key).is_ok()
        }
        Op::InsertDuplicate { pick: p } => {
            let key_id = pick(keyring, p);
            let ok = keyring
                .insert_active(root_key(key_id, KeyState::Active, 0, None))
                .is_ok();
            assert!(
                !ok || keyring.len() == 1,
                "a reused id is accepted only on an empty keyring"
            );
            ok
        }
        Op::Promote { pick: p } => {
            let key_id = pick(keyring, p);
            let ok = keyring.promote(key_id).is_ok();
            if ok {
                assert_eq!(
                    keyring.active().map(RootKey::key_id),
                    Some(key_id),
                    "promoted signs"
                );
            }
            ok
        }
        Op::Remove {
            pick: p,
            force,
            in_use,
        } => keyring.remove(pick(keyring, p), force, in_use).is_ok(),
        Op::Revoke { pick: p } => keyring.revoke(pick(keyring, p)).is_ok(),
        Op::CollectGarbage { now } => {
            let candidates = keyring.gc_candidates(now, 500, 100, |_| false);
            for key_id in &candidates {
                let removed = keyring.remove(*key_id, false, false);
                assert!(
                    removed.is_ok(),
                    "every GC candidate is removable without force"
                );
            }
            true
        }
    }
}

fn active_count(keyring: &Keyring) -> usize {
    keyring
        .iter()
        .filter(|key| key.state() == KeyState::Active)
        .count()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// After every operation: at most one active key (1); exactly one once there has been one
    /// (2); publish times and entry ids are consistent (3, 4); a failed call changed nothing (5);
    /// and the keyring survives the snapshot roundtrip.
    #[test]
    fn keyring_invariants_hold_after_any_sequence_of_operations(
        ops in proptest::collection::vec(op(), 1..60)
    ) {
        let mut keyring = Keyring::new();
        let mut next_id = 0u128;
        let mut had_active = false;

        for op in &ops {
            let before = keyring.clone();
            let ok = apply(&mut keyring, op, &mut next_id);

            if !ok {
                prop_assert_eq!(&keyring, &before, "a refused {:?} changed the keyring", op);
            }
            prop_assert!(active_count(&keyring) <= 1, "more than one active key after {:?}", op);
            had_active |= active_count(&keyring) == 1;
            prop_assert_eq!(
                active_count(&keyring),
                usize::from(had_active),
                "the active key disappeared after {:?}",
                op
            );
            prop_assert_eq!(keyring.check_invariants(), Ok(()), "invariant broken by {:?}", op);
        }

        let json = serde_json::to_string(&keyring).expect("a valid keyring serializes");
        let back: Keyring = serde_json::from_str(&json).expect("and deserializes");
        prop_assert_eq!(back, keyring, "the final keyring survives a snapshot roundtrip");
    }
}
