//! The state itself and its read accessors; the apply functions live in `apply.rs`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sigil_acl::AclPolicy;
use sigil_keyring::{KeyId, Keyring};
use sigil_types::{AclToken, AllocId, Allocation, Job, PlanId, PlanOutcome, SecretHash};

use crate::RecordKey;

/// Everything Sigil replicates, as of some applied log index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SigilState {
    pub(crate) keyring: Keyring,
    /// Jobs by `<namespace>/<job id>` (namespaces cannot contain '/').
    pub(crate) jobs: BTreeMap<String, Job>,
    pub(crate) allocs: BTreeMap<AllocId, Allocation>,
    pub(crate) plans: BTreeMap<PlanId, PlanRecord>,
    /// Key ids of client-identified rotations, so a retried rotation creates no second key.
    pub(crate) rotations: BTreeMap<String, KeyId>,
    /// ACL policies by name.
    #[serde(default)]
    pub(crate) acl_policies: BTreeMap<String, AclPolicy>,
    /// ACL tokens by accessor id.
    #[serde(default)]
    pub(crate) acl_tokens: BTreeMap<uuid::Uuid, AclToken>,
    /// Accessor ids by secret hash: the index every authenticated request uses. Derived from
    /// `acl_tokens` (rebuilt when records are loaded), never a record of its own.
    #[serde(default)]
    pub(crate) token_hashes: BTreeMap<SecretHash, uuid::Uuid>,
    /// Set once the ACL system was bootstrapped; never cleared.
    #[serde(default)]
    pub(crate) acl_bootstrap: Option<AclBootstrap>,
    /// Records changed since the last [`SigilState::take_dirty`]; never persisted itself.
    #[serde(skip)]
    pub(crate) dirty: BTreeSet<RecordKey>,
}

/// What is remembered of an applied plan, to answer its retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRecord {
    /// The allocations it placed.
    pub placed: Vec<AllocId>,
    /// The allocations it stopped.
    pub stopped: Vec<AllocId>,
    /// The log index that applied it.
    pub log_index: u64,
}

/// The record of the one-time ACL bootstrap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclBootstrap {
    /// The management token the bootstrap created (it may have been deleted since).
    pub accessor_id: uuid::Uuid,
    /// The log index of the bootstrap entry.
    pub log_index: u64,
}

impl SigilState {
    /// The replicated keyring (wrapped keys and their states).
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The key a rotation with client id `request_id` created, if that rotation applied.
    pub fn rotation(&self, request_id: &str) -> Option<KeyId> {
        self.rotations.get(request_id).copied()
    }

    /// An allocation by id.
    pub fn alloc(&self, id: &AllocId) -> Option<&Allocation> {
        self.allocs.get(id)
    }

    /// All allocations, by id.
    pub fn allocs(&self) -> impl Iterator<Item = &Allocation> {
        self.allocs.values()
    }

    /// A job by namespace and id.
    pub fn job(&self, namespace: &str, id: &str) -> Option<&Job> {
        self.jobs.get(&job_key(namespace, id))
    }

    /// The stored result of a plan applied earlier, marked as a replay.
    pub fn plan_outcome(&self, plan_id: &PlanId) -> Option<PlanOutcome> {
        let record = self.plans.get(plan_id)?;
        let allocations = record
            .placed
            .iter()
            .filter_map(|id| self.allocs.get(id))
            .cloned()
            .collect();
        Some(PlanOutcome {
            plan_id: plan_id.clone(),
            allocations,
            stopped: record.stopped.clone(),
            log_index: record.log_index,
            replayed: true,
        })
    }

    /// How many live allocations carry plan-time tokens signed by `key_id`; such a key may not
    /// be removed without force, or their tokens would stop verifying (guarantee 3).
    pub fn live_allocs_signed_by(&self, key_id: KeyId) -> usize {
        self.allocs
            .values()
            .filter(|a| a.is_live() && a.signing_key_id == key_id)
            .count()
    }

    /// An ACL policy by name.
    pub fn acl_policy(&self, name: &str) -> Option<&AclPolicy> {
        self.acl_policies.get(name)
    }

    /// Every ACL policy, by name.
    pub fn acl_policies(&self) -> impl Iterator<Item = &AclPolicy> {
        self.acl_policies.values()
    }

    /// An ACL token by accessor id.
    pub fn acl_token(&self, accessor_id: &uuid::Uuid) -> Option<&AclToken> {
        self.acl_tokens.get(accessor_id)
    }

    /// The ACL token whose secret hashes to `hash`.
    pub fn acl_token_by_hash(&self, hash: &SecretHash) -> Option<&AclToken> {
        self.acl_tokens.get(self.token_hashes.get(hash)?)
    }

    /// Every ACL token, by accessor id.
    pub fn acl_tokens(&self) -> impl Iterator<Item = &AclToken> {
        self.acl_tokens.values()
    }

    /// The ACL bootstrap, once it happened.
    pub fn acl_bootstrap(&self) -> Option<&AclBootstrap> {
        self.acl_bootstrap.as_ref()
    }

    /// The records changed since the last call, for the store to persist with `last_applied`.
    pub fn take_dirty(&mut self) -> BTreeSet<RecordKey> {
        std::mem::take(&mut self.dirty)
    }
}

pub(crate) fn job_key(namespace: &str, id: &str) -> String {
    format!("{namespace}/{id}")
}
