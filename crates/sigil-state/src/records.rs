//! How the state is laid out as records in the store: one record per keyring, job, allocation,
//! plan, ACL policy and ACL token, plus the bootstrap marker, so that applying an entry rewrites
//! only what it touched.

use serde::{Deserialize, Serialize};
use sigil_acl::AclPolicy;
use sigil_types::{AclToken, AllocId, PlanId};

use crate::SigilState;
use crate::state::{AclBootstrap, PlanRecord};

/// The key of one persisted record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RecordKey {
    /// The whole keyring (small: a handful of wrapped keys).
    Keyring,
    /// A job, by `<namespace>/<id>`.
    Job(String),
    /// An allocation.
    Alloc(AllocId),
    /// A plan's stored result.
    Plan(PlanId),
    /// An ACL policy, by name.
    AclPolicy(String),
    /// An ACL token, by accessor id.
    AclToken(uuid::Uuid),
    /// The ACL bootstrap marker.
    AclBootstrap,
    /// A client-identified rotation and the key it created.
    Rotation(String),
}

/// A record that cannot be decoded: the store is corrupt or from an incompatible version.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The record key is not one Sigil writes.
    #[error("unknown record key {0:?}")]
    UnknownKey(String),
    /// The record value does not decode.
    #[error("record {key} does not decode: {source}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// The decoding error.
        source: serde_json::Error,
    },
}

const KEYRING: &str = "keyring";
const JOB: &str = "job/";
const ALLOC: &str = "alloc/";
const PLAN: &str = "plan/";
const ACL_POLICY: &str = "acl-policy/";
const ACL_TOKEN: &str = "acl-token/";
const ACL_BOOTSTRAP: &str = "acl-bootstrap";
const ROTATION: &str = "rotation/";

impl RecordKey {
    /// The key as stored.
    pub fn encode(&self) -> String {
        match self {
            Self::Keyring => KEYRING.to_owned(),
            Self::Job(key) => format!("{JOB}{key}"),
            Self::Alloc(id) => format!("{ALLOC}{id}"),
            Self::Plan(id) => format!("{PLAN}{id}"),
            Self::AclPolicy(name) => format!("{ACL_POLICY}{name}"),
            Self::AclToken(id) => format!("{ACL_TOKEN}{id}"),
            Self::AclBootstrap => ACL_BOOTSTRAP.to_owned(),
            Self::Rotation(id) => format!("{ROTATION}{id}"),
        }
    }
}

impl SigilState {
    /// The current value of a record, or `None` when it no longer exists.
    pub fn encode_record(&self, key: &RecordKey) -> Option<Vec<u8>> {
        let value = match key {
            RecordKey::Keyring => serde_json::to_vec(&self.keyring),
            RecordKey::Job(k) => serde_json::to_vec(self.jobs.get(k)?),
            RecordKey::Alloc(id) => serde_json::to_vec(self.allocs.get(id)?),
            RecordKey::Plan(id) => serde_json::to_vec(self.plans.get(id)?),
            RecordKey::AclPolicy(name) => serde_json::to_vec(self.acl_policies.get(name)?),
            RecordKey::AclToken(id) => serde_json::to_vec(self.acl_tokens.get(id)?),
            RecordKey::AclBootstrap => serde_json::to_vec(self.acl_bootstrap.as_ref()?),
            RecordKey::Rotation(id) => serde_json::to_vec(self.rotations.get(id)?),
        };
        Some(value.expect("state records always serialize"))
    }

    /// Rebuilds the state from its persisted records.
    pub fn from_records<'a>(
        records: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Self, RecordError> {
        let mut state = Self::default();
        for (key, value) in records {
            let corrupt = |source| RecordError::Corrupt {
                key: key.to_owned(),
                source,
            };
            if key == KEYRING {
                state.keyring = serde_json::from_slice(value).map_err(corrupt)?;
            } else if let Some(k) = key.strip_prefix(JOB) {
                state.jobs.insert(
                    k.to_owned(),
                    serde_json::from_slice(value).map_err(corrupt)?,
                );
            } else if key.starts_with(ALLOC) {
                let alloc: sigil_types::Allocation =
                    serde_json::from_slice(value).map_err(corrupt)?;
                state.allocs.insert(alloc.id, alloc);
            } else if let Some(id) = key.strip_prefix(PLAN) {
                let record: PlanRecord = serde_json::from_slice(value).map_err(corrupt)?;
                state.plans.insert(PlanId(id.to_owned()), record);
            } else if key.starts_with(ACL_POLICY) {
                let policy: AclPolicy = serde_json::from_slice(value).map_err(corrupt)?;
                state.acl_policies.insert(policy.name.clone(), policy);
            } else if key.starts_with(ACL_TOKEN) {
                let token: AclToken = serde_json::from_slice(value).map_err(corrupt)?;
                state
                    .token_hashes
                    .insert(token.secret_hash.clone(), token.accessor_id);
                state.acl_tokens.insert(token.accessor_id, token);
            } else if let Some(id) = key.strip_prefix(ROTATION) {
                let key_id = serde_json::from_slice(value).map_err(corrupt)?;
                state.rotations.insert(id.to_owned(), key_id);
            } else if key == ACL_BOOTSTRAP {
                let record: AclBootstrap = serde_json::from_slice(value).map_err(corrupt)?;
                state.acl_bootstrap = Some(record);
            } else {
                return Err(RecordError::UnknownKey(key.to_owned()));
            }
        }
        Ok(state)
    }

    /// Every record of the state, for writing a snapshot's state out in full.
    pub fn all_records(&self) -> Vec<RecordKey> {
        let mut keys = vec![RecordKey::Keyring];
        keys.extend(self.jobs.keys().cloned().map(RecordKey::Job));
        keys.extend(self.allocs.keys().copied().map(RecordKey::Alloc));
        keys.extend(self.plans.keys().cloned().map(RecordKey::Plan));
        keys.extend(self.acl_policies.keys().cloned().map(RecordKey::AclPolicy));
        keys.extend(self.acl_tokens.keys().copied().map(RecordKey::AclToken));
        keys.extend(self.rotations.keys().cloned().map(RecordKey::Rotation));
        if self.acl_bootstrap.is_some() {
            keys.push(RecordKey::AclBootstrap);
        }
        keys
    }
}
