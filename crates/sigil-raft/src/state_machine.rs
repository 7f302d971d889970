//! The state-machine store: [`SigilState`] in memory, persisted record by record in sled, with
//! `last_applied` and the membership in the same tree so that one batch moves them together.
//!
//! Readers (the gRPC and HTTP services) share the in-memory state through [`SharedState`];
//! the keyring's node-local side (unwrapped keys) follows it through a [`KeyringObserver`].

use std::io;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use futures::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StoredMembership};
use sigil_keyring::Keyring;
use sigil_state::{EntryPosition, SigilState};
use sigil_types::{CommandResponse, TypeConfig};

use crate::codec::{decode, encode, io_err};

type SigilLogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
type SigilMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
type SigilSnapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, Vec<u8>>;
type SigilSnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;

/// Reserved keys in the state tree; record keys never start with '~'.
const LAST_APPLIED: &str = "~last_applied";
const MEMBERSHIP: &str = "~membership";
const SNAPSHOT_META: &str = "meta";
const SNAPSHOT_DATA: &str = "data";

/// Told about every change of the replicated keyring, after it is applied.
pub trait KeyringObserver: Send + Sync + 'static {
    /// The keyring now reads `keyring` (after an apply, a snapshot install, or at open).
    fn keyring_changed(&self, keyring: &Keyring);
}

/// The applied state together with where in the log it stands.
#[derive(Debug, Default)]
pub struct AppliedState {
    /// The replicated state.
    pub state: SigilState,
    /// The last log id applied to `state`.
    pub last_applied: Option<SigilLogId>,
    /// The last membership applied.
    pub membership: SigilMembership,
}

/// Read access to the applied state, shared with the services.
#[derive(Clone, Default)]
pub struct SharedState(Arc<RwLock<AppliedState>>);

impl SharedState {
    /// Locks the state for reading. Hold the guard briefly and never across an `.await`.
    pub fn read(&self) -> RwLockReadGuard<'_, AppliedState> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, AppliedState> {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The state-machine store; clones share everything.
#[derive(Clone)]
pub struct StateMachineStore {
    db: sled::Db,
    tree: sled::Tree,
    snapshots: sled::Tree,
    shared: SharedState,
    observer: Arc<dyn KeyringObserver>,
}

impl StateMachineStore {
    /// Opens the state in `db`, loading what earlier runs applied, and tells `observer` the
    /// keyring it found.
    pub fn open(db: &sled::Db, observer: Arc<dyn KeyringObserver>) -> io::Result<Self> {
        let tree = db.open_tree("state").map_err(io_err)?;
        let snapshots = db.open_tree("snapshot").map_err(io_err)?;
        let applied = load(&tree)?;
        observer.keyring_changed(applied.state.keyring());
        let shared = SharedState(Arc::new(RwLock::new(applied)));
        Ok(Self {
            db: db.clone(),
            tree,
            snapshots,
            shared,
            observer,
        })
    }

    /// The state shared with readers.
    pub fn shared(&self) -> SharedState {
        self.shared.clone()
    }

    /// Applies a batch in memory and persists what it touched with `last_applied`, atomically.
    fn apply_batch(&self, entries: Vec<sigil_types::LogEntry>) -> io::Result<Vec<CommandResponse>> {
        let mut applied = self.shared.write();
        let mut responses = Vec::with_capacity(entries.len());
        for entry in &entries {
            let log_id = entry.log_id;
            let response = match &entry.payload {
                EntryPayload::Blank => CommandResponse::Applied,
                EntryPayload::Normal(command) => {
                    let at = EntryPosition {
                        index: log_id.index,
                        term: log_id.leader_id.term,
                        leader: log_id.leader_id.node_id,
                    };
                    applied.state.apply(at, command)
                }
                EntryPayload::Membership(membership) => {
                    applied.membership = StoredMembership::new(Some(log_id), membership.clone());
                    CommandResponse::Applied
                }
            };
            applied.last_applied = Some(log_id);
            responses.push(response);
        }

        let dirty = applied.state.take_dirty();
        let mut batch = sled::Batch::default();
        for key in &dirty {
            match applied.state.encode_record(key) {
                Some(value) => batch.insert(key.encode().as_bytes(), value),
                None => batch.remove(key.encode().as_bytes()),
            }
        }
        batch.insert(LAST_APPLIED, encode(&applied.last_applied)?);
        batch.insert(MEMBERSHIP, encode(&applied.membership)?);
        self.tree.apply_batch(batch).map_err(io_err)?;

        if dirty.contains(&sigil_state::RecordKey::Keyring) {
            self.observer.keyring_changed(applied.state.keyring());
        }
        Ok(responses)
    }

    fn read_snapshot(&self) -> io::Result<Option<SigilSnapshot>> {
        let Some(meta) = self.snapshots.get(SNAPSHOT_META).map_err(io_err)? else {
            return Ok(None);
        };
        let data = self
            .snapshots
            .get(SNAPSHOT_DATA)
            .map_err(io_err)?
            .unwrap_or_default();
        Ok(Some(SigilSnapshot {
            meta: decode("snapshot meta", &meta)?,
            snapshot: data.to_vec(),
        }))
    }

    async fn save_snapshot(&self, meta: &SigilSnapshotMeta, data: &[u8]) -> io::Result<()> {
        let mut batch = sled::Batch::default();
        batch.insert(SNAPSHOT_META, encode(meta)?);
        batch.insert(SNAPSHOT_DATA, data);
        self.snapshots.apply_batch(batch).map_err(io_err)?;
        // The flush covers the whole database, so the state records the snapshot was built
        // from are durable too before openraft purges the log behind it.
        self.db.flush_async().await.map_err(io_err)?;
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> io::Result<SigilSnapshot> {
        let (meta, data) = {
            let applied = self.shared.read();
            let meta = SigilSnapshotMeta {
                last_log_id: applied.last_applied,
                last_membership: applied.membership.clone(),
            };
            (meta, encode(&applied.state)?)
        };
        self.save_snapshot(&meta, &data).await?;
        tracing::info!(last_log_id = ?meta.last_log_id, bytes = data.len(), "built snapshot");
        Ok(SigilSnapshot {
            meta,
            snapshot: data,
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> io::Result<(Option<SigilLogId>, SigilMembership)> {
        let applied = self.shared.read();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> io::Result<()>
    where
        Strm: Stream<Item = io::Result<EntryResponder<TypeConfig>>> + Unpin + OptionalSend,
    {
        let mut batch = Vec::new();
        let mut responders = Vec::new();
        while let Some((entry, responder)) = entries.try_next().await? {
            batch.push(entry);
            responders.push(responder);
        }
        let responses = self.apply_batch(batch)?;
        for (responder, response) in responders.into_iter().zip(responses) {
            if let Some(responder) = responder {
                responder.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SigilSnapshotMeta,
        data: Vec<u8>,
    ) -> io::Result<()> {
        let state: SigilState = decode("snapshot", &data)?;

        // Replace every record in one batch: a crash leaves either the old state or the new.
        let mut batch = sled::Batch::default();
        for item in self.tree.iter() {
            let (key, _) = item.map_err(io_err)?;
            batch.remove(key);
        }
        for key in state.all_records() {
            if let Some(value) = state.encode_record(&key) {
                batch.insert(key.encode().as_bytes(), value);
            }
        }
        batch.insert(LAST_APPLIED, encode(&meta.last_log_id)?);
        batch.insert(MEMBERSHIP, encode(&meta.last_membership)?);
        self.tree.apply_batch(batch).map_err(io_err)?;
        self.save_snapshot(meta, &data).await?;

        let mut applied = self.shared.write();
        applied.state = state;
        applied.last_applied = meta.last_log_id;
        applied.membership = meta.last_membership.clone();
        self.observer.keyring_changed(applied.state.keyring());
        tracing::info!(last_log_id = ?meta.last_log_id, "installed snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<SigilSnapshot>> {
        self.read_snapshot()
    }
}

fn load(tree: &sled::Tree) -> io::Result<AppliedState> {
    let mut records = Vec::new();
    let mut applied = AppliedState::default();
    for item in tree.iter() {
        let (key, value) = item.map_err(io_err)?;
        let key = String::from_utf8(key.to_vec())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "state key is not UTF-8"))?;
        match key.as_str() {
            LAST_APPLIED => applied.last_applied = decode("last_applied", &value)?,
            MEMBERSHIP => applied.membership = decode("membership", &value)?,
            _ => records.push((key, value)),
        }
    }
    let records = records.iter().map(|(k, v)| (k.as_str(), v.as_ref()));
    applied.state = SigilState::from_records(records)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(applied)
}
