//! How the state is laid out as records in the store: one record per keyring, job, allocation
//! and plan, so that applying an entry rewrites only what it touched.

use serde::{Deserialize, Serialize};
use sigil_types::{AllocId, PlanId};

use crate::SigilState;
use crate::state::PlanRecord;

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

impl RecordKey {
    /// The key as stored.
    pub fn encode(&self) -> String {
        match self {
            Self::Keyring => KEYRING.to_owned(),
            Self::Job(key) => format!("{JOB}{key}"),
            Self::Alloc(id) => format!("{ALLOC}{id}"),
            Self::Plan(id) => format!("{PLAN}{id}"),
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
        keys
    }
}
