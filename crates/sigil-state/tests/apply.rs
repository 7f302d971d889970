//! The state machine's apply rules, entry by entry, with exact expected results: exactly-once
//! plans, the signer-term check, refused entries changing nothing, keyring transitions, and
//! records that rebuild the same state.

use sigil_keyring::{Kek, KeyId, KeyMaterial, RootKey, RootKeyMeta};
use sigil_state::{EntryPosition, SigilState};
use sigil_types::{
    AllocId, AllocStatus, Allocation, Command, CommandResponse, IssuedIdentity, Job, PlanEntry,
    PlanId, RejectionKind, Workload,
};

const AT: EntryPosition = EntryPosition {
    index: 10,
    term: 3,
    leader: 1,
};

fn key(kek: &Kek, meta: RootKeyMeta) -> RootKey {
    RootKey::wrap(meta, kek, &KeyMaterial::generate())
}

fn state_with_active_key() -> (SigilState, KeyId) {
    let kek = Kek::generate();
    let id = KeyId::random();
    let mut state = SigilState::default();
    let key = key(&kek, RootKeyMeta::new_active(id, 1_000));
    let response = state.apply(AT, &Command::InitKeyring { key });
    assert!(
        matches!(response, CommandResponse::Key(_)),
        "init applies: {response:?}"
    );
    (state, id)
}

fn job() -> Job {
    serde_json::from_value(serde_json::json!({
        "namespace": "default", "id": "web",
        "groups": [{"name": "frontend", "tasks": [{"name": "nginx"}]}]
    }))
    .expect("a valid job")
}

fn alloc(key_id: KeyId) -> Allocation {
    Allocation {
        id: AllocId::random(),
        namespace: "default".into(),
        job_id: "web".into(),
        parent_job_id: None,
        group: "frontend".into(),
        node_id: "client-1".into(),
        status: AllocStatus::Running,
        signing_key_id: key_id,
        create_time_ms: 5_000,
        identities: vec![IssuedIdentity {
            workload: Workload::Task("nginx".into()),
            identity: "default".into(),
            key_id,
            jwt: "header.payload.signature".into(),
            expires_at: None,
        }],
    }
}

fn plan(plan_id: &str, allocations: Vec<Allocation>, stop: Vec<AllocId>) -> Command {
    Command::ApplyPlan(Box::new(PlanEntry {
        plan_id: PlanId(plan_id.into()),
        job: job(),
        allocations,
        stop,
        signer: AT.leader,
        term: AT.term,
        time_ms: 5_000,
    }))
}

fn rejection_kind(response: CommandResponse) -> RejectionKind {
    match response {
        CommandResponse::Rejected(rejection) => rejection.kind,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn a_plan_applies_once_and_its_retry_returns_the_first_result() {
    let (mut state, key_id) = state_with_active_key();
    let first = alloc(key_id);

    let applied = state.apply(AT, &plan("p1", vec![first.clone()], vec![]));
    let retry_at = EntryPosition { index: 11, ..AT };
    let retried = state.apply(retry_at, &plan("p1", vec![alloc(key_id)], vec![]));

    let CommandResponse::Plan(applied) = applied else {
        panic!("the plan applies")
    };
    let CommandResponse::Plan(retried) = retried else {
        panic!("the retry answers")
    };
    assert!(
        !applied.replayed && retried.replayed,
        "only the retry is a replay"
    );
    assert_eq!(retried.log_index, 10, "the retry reports the first entry");
    assert_eq!(
        retried.allocations,
        vec![first],
        "the retry returns the first allocation"
    );
    assert_eq!(state.allocs().count(), 1, "the retry placed nothing");
}

#[test]
fn a_plan_signed_in_another_term_is_refused_and_changes_nothing() {
    let (mut state, key_id) = state_with_active_key();
    let before = state.clone();

    let later_term = EntryPosition {
        term: AT.term + 1,
        ..AT
    };
    let response = state.apply(later_term, &plan("p1", vec![alloc(key_id)], vec![]));

    assert_eq!(
        rejection_kind(response),
        RejectionKind::Aborted,
        "a relayed entry is refused"
    );
    assert_eq!(state, before, "nothing changed");
}

#[test]
fn stopping_an_unknown_allocation_refuses_the_whole_plan() {
    let (mut state, key_id) = state_with_active_key();
    let before = state.clone();

    let response = state.apply(
        AT,
        &plan("p1", vec![alloc(key_id)], vec![AllocId::random()]),
    );

    assert_eq!(
        rejection_kind(response),
        RejectionKind::NotFound,
        "unknown stop"
    );
    assert_eq!(state, before, "not even the placement was applied");
}

#[test]
fn a_stop_marks_the_allocation_stopped() {
    let (mut state, key_id) = state_with_active_key();
    let placed = alloc(key_id);
    state.apply(AT, &plan("place", vec![placed.clone()], vec![]));

    state.apply(AT, &plan("stop", vec![], vec![placed.id]));

    let stored = state.alloc(&placed.id).expect("the allocation remains");
    assert_eq!(stored.status, AllocStatus::Stopped, "stopped");
    assert_eq!(
        state.live_allocs_signed_by(key_id),
        0,
        "no live allocation uses the key"
    );
}

#[test]
fn a_second_keyring_initialization_is_refused() {
    let (mut state, first) = state_with_active_key();
    let other = key(
        &Kek::generate(),
        RootKeyMeta::new_active(KeyId::random(), 2_000),
    );

    let response = state.apply(AT, &Command::InitKeyring { key: other });

    assert_eq!(
        rejection_kind(response),
        RejectionKind::Aborted,
        "racing leaders: one wins"
    );
    assert_eq!(
        state.keyring().active().map(|k| k.meta.key_id),
        Some(first),
        "first key stays"
    );
}

#[test]
fn a_key_that_signed_a_live_allocation_is_not_removed_without_force() {
    let (mut state, old) = state_with_active_key();
    state.apply(AT, &plan("p1", vec![alloc(old)], vec![]));
    let new = key(
        &Kek::generate(),
        RootKeyMeta::new_active(KeyId::random(), 3_000),
    );
    state.apply(
        AT,
        &Command::RotateKey {
            key: new,
            request_id: None,
        },
    );

    let refused = state.apply(
        AT,
        &Command::RemoveKey {
            key_id: old,
            force: false,
        },
    );
    assert_eq!(
        rejection_kind(refused),
        RejectionKind::FailedPrecondition,
        "key in use"
    );
    assert!(state.keyring().get(&old).is_some(), "the key stays");

    let forced = state.apply(
        AT,
        &Command::RemoveKey {
            key_id: old,
            force: true,
        },
    );
    assert_eq!(forced, CommandResponse::Applied, "force removes it");
    assert!(state.keyring().get(&old).is_none(), "the key is gone");
}

#[test]
fn persisted_records_rebuild_the_same_state() {
    let (mut state, key_id) = state_with_active_key();
    state.apply(AT, &plan("p1", vec![alloc(key_id), alloc(key_id)], vec![]));

    let records: Vec<_> = state
        .all_records()
        .into_iter()
        .map(|key| {
            (
                key.encode(),
                state.encode_record(&key).expect("the record exists"),
            )
        })
        .collect();
    let rebuilt = SigilState::from_records(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
        .expect("the records decode");

    state.take_dirty();
    assert_eq!(rebuilt, state, "the same state from its records");
}
