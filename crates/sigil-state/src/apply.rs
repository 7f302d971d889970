//! One `apply_<command>` per replicated command (the ACL ones are in `acl.rs`). Each either
//! changes the state and marks what it touched, or changes nothing and returns a [`Rejection`].

use sigil_keyring::{KeyState, RootKey};
use sigil_types::{
    AllocStatus, Command, CommandResponse, NodeId, PlanEntry, PlanOutcome, Rejection,
    RejectionKind, RenewEntry,
};

use crate::state::{PlanRecord, job_key};
use crate::{RecordKey, SigilState};

/// Where an entry sits in the log: the state machine needs the index for results and the
/// proposing leader's term and id to check who signed a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryPosition {
    /// The entry's log index.
    pub index: u64,
    /// The term of the leader that proposed it.
    pub term: u64,
    /// The leader that proposed it.
    pub leader: NodeId,
}

impl SigilState {
    /// Applies one command. Deterministic: the same state and entry give the same result on
    /// every server.
    pub fn apply(&mut self, at: EntryPosition, command: &Command) -> CommandResponse {
        let result = match command {
            Command::InitKeyring { key } => self.apply_init_keyring(key),
            Command::RotateKey { key, request_id } => {
                self.apply_client_rotation(key, request_id.as_deref())
            }
            Command::PromoteKey { key_id } => {
                self.apply_keyring_change(|k| k.promote(*key_id).map(|_| CommandResponse::Applied))
            }
            Command::RemoveKey { key_id, force } => {
                let in_use = self.live_allocs_signed_by(*key_id) > 0;
                self.apply_keyring_change(|k| {
                    k.remove(*key_id, *force, in_use)
                        .map(|_| CommandResponse::Applied)
                })
            }
            Command::ApplyPlan(entry) => self.apply_plan(at, entry),
            Command::RenewIdentity(entry) => self.apply_renew_identity(at, entry),
            Command::BootstrapAcl(token) => self.apply_bootstrap_acl(at, token),
            Command::UpsertPolicy(policy) => self.apply_upsert_policy(policy),
            Command::DeletePolicy { name } => self.apply_delete_policy(name),
            Command::CreateToken(token) => self.apply_create_token(token),
            Command::DeleteToken { accessor_id } => self.apply_delete_token(accessor_id),
        };
        result.unwrap_or_else(CommandResponse::Rejected)
    }

    fn apply_init_keyring(&mut self, key: &RootKey) -> Result<CommandResponse, Rejection> {
        if let Some(active) = self.keyring.active() {
            let message = format!("the keyring already has active key {}", active.meta.key_id);
            return Err(Rejection::new(RejectionKind::Aborted, message));
        }
        self.apply_rotate_key(key)
    }

    fn apply_client_rotation(
        &mut self,
        key: &RootKey,
        request_id: Option<&str>,
    ) -> Result<CommandResponse, Rejection> {
        let Some(request_id) = request_id else {
            return self.apply_rotate_key(key);
        };
        if let Some(first) = self.rotations.get(request_id) {
            let meta = self
                .keyring
                .get(first)
                .map(|k| k.meta.clone())
                .ok_or_else(|| {
                    let message =
                        format!("rotation {request_id} created key {first}, since removed");
                    Rejection::new(RejectionKind::NotFound, message)
                })?;
            return Ok(CommandResponse::Key(meta));
        }
        let response = self.apply_rotate_key(key)?;
        self.rotations
            .insert(request_id.to_owned(), key.meta.key_id);
        self.dirty
            .insert(RecordKey::Rotation(request_id.to_owned()));
        Ok(response)
    }

    fn apply_rotate_key(&mut self, key: &RootKey) -> Result<CommandResponse, Rejection> {
        let meta = key.meta.clone();
        match meta.state {
            KeyState::Active => {
                self.apply_keyring_change(|keyring| keyring.insert_active(key.clone()))?;
            }
            KeyState::Prepublished => {
                self.apply_keyring_change(|keyring| keyring.insert_prepublished(key.clone()))?;
            }
            state => {
                let message = format!("a new key must be active or prepublished, not {state}");
                return Err(Rejection::new(RejectionKind::FailedPrecondition, message));
            }
        }
        Ok(CommandResponse::Key(meta))
    }

    fn apply_keyring_change<T>(
        &mut self,
        change: impl FnOnce(&mut sigil_keyring::Keyring) -> Result<T, sigil_keyring::KeyringError>,
    ) -> Result<T, Rejection> {
        // Change a copy so that a refused change leaves the keyring exactly as it was.
        let mut keyring = self.keyring.clone();
        let out = change(&mut keyring).map_err(keyring_rejection)?;
        self.keyring = keyring;
        self.dirty.insert(RecordKey::Keyring);
        Ok(out)
    }

    fn apply_plan(
        &mut self,
        at: EntryPosition,
        entry: &PlanEntry,
    ) -> Result<CommandResponse, Rejection> {
        if let Some(outcome) = self.plan_outcome(&entry.plan_id) {
            return Ok(CommandResponse::Plan(Box::new(outcome)));
        }
        self.check_plan(at, entry)?;

        let job_key = job_key(&entry.job.namespace, &entry.job.id);
        self.jobs.insert(job_key.clone(), entry.job.clone());
        self.dirty.insert(RecordKey::Job(job_key));
        for id in &entry.stop {
            if let Some(alloc) = self.allocs.get_mut(id) {
                alloc.status = AllocStatus::Stopped;
                self.dirty.insert(RecordKey::Alloc(*id));
            }
        }
        for alloc in &entry.allocations {
            self.allocs.insert(alloc.id, alloc.clone());
            self.dirty.insert(RecordKey::Alloc(alloc.id));
        }
        let record = PlanRecord {
            placed: entry.allocations.iter().map(|a| a.id).collect(),
            stopped: entry.stop.clone(),
            log_index: at.index,
        };
        self.plans.insert(entry.plan_id.clone(), record);
        self.dirty.insert(RecordKey::Plan(entry.plan_id.clone()));

        Ok(CommandResponse::Plan(Box::new(PlanOutcome {
            plan_id: entry.plan_id.clone(),
            allocations: entry.allocations.clone(),
            stopped: entry.stop.clone(),
            log_index: at.index,
            replayed: false,
        })))
    }

    fn apply_renew_identity(
        &mut self,
        at: EntryPosition,
        entry: &RenewEntry,
    ) -> Result<CommandResponse, Rejection> {
        check_signer(at, entry.signer, entry.term, "identity renewal")?;
        let Some(alloc) = self.allocs.get_mut(&entry.alloc_id) else {
            let message = format!("allocation {} does not exist", entry.alloc_id);
            return Err(Rejection::new(RejectionKind::NotFound, message));
        };
        if !alloc.is_live() {
            let message = format!("allocation {} is stopped", entry.alloc_id);
            return Err(Rejection::new(RejectionKind::FailedPrecondition, message));
        }
        let new = &entry.identity;
        let slot = alloc
            .identities
            .iter_mut()
            .find(|i| i.workload == new.workload && i.identity == new.identity);
        let Some(slot) = slot else {
            let message = format!(
                "allocation {} has no identity {:?} for {} {:?}",
                entry.alloc_id,
                new.identity,
                new.workload.kind(),
                new.workload.name()
            );
            return Err(Rejection::new(RejectionKind::NotFound, message));
        };
        *slot = new.clone();
        self.dirty.insert(RecordKey::Alloc(entry.alloc_id));
        Ok(CommandResponse::Applied)
    }

    /// The checks that make a plan entry safe to apply; none of them changes anything.
    fn check_plan(&self, at: EntryPosition, entry: &PlanEntry) -> Result<(), Rejection> {
        check_signer(at, entry.signer, entry.term, "plan")?;
        for alloc in &entry.allocations {
            for identity in &alloc.identities {
                let signs = self
                    .keyring
                    .get(&identity.key_id)
                    .map(|k| k.meta.state.in_jwks());
                if signs != Some(true) {
                    let message = format!(
                        "key {} that signed plan {} is no longer published; resubmit the plan",
                        identity.key_id, entry.plan_id
                    );
                    return Err(Rejection::new(RejectionKind::Aborted, message));
                }
            }
        }
        for id in &entry.stop {
            let Some(alloc) = self.allocs.get(id) else {
                let message = format!("allocation {id} to stop does not exist");
                return Err(Rejection::new(RejectionKind::NotFound, message));
            };
            if (alloc.namespace.as_str(), alloc.job_id.as_str())
                != (entry.job.namespace.as_str(), entry.job.id.as_str())
            {
                let message = format!(
                    "allocation {id} belongs to job {}/{}, not to the plan's job {}/{}",
                    alloc.namespace, alloc.job_id, entry.job.namespace, entry.job.id
                );
                return Err(Rejection::new(RejectionKind::FailedPrecondition, message));
            }
        }
        Ok(())
    }
}

/// Tokens may only enter the state through an entry their signer proposed in the term it signed
/// in (guarantee 1): a replayed or relayed entry carrying another leader's tokens is refused.
fn check_signer(at: EntryPosition, signer: NodeId, term: u64, what: &str) -> Result<(), Rejection> {
    if (term, signer) == (at.term, at.leader) {
        return Ok(());
    }
    let message = format!(
        "{what} was signed by node {signer} in term {term} but proposed by node {} in term {}",
        at.leader, at.term
    );
    Err(Rejection::new(RejectionKind::Aborted, message))
}

fn keyring_rejection(err: sigil_keyring::KeyringError) -> Rejection {
    use sigil_keyring::KeyringError as E;
    let kind = match &err {
        E::NotFound { .. } => RejectionKind::NotFound,
        _ => RejectionKind::FailedPrecondition,
    };
    Rejection::new(kind, err.to_string())
}
