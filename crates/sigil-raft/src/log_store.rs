//! The Raft log and vote on sled.
//!
//! Two trees: `raft_log` (entries keyed by big-endian index) and `raft_meta` (vote, committed,
//! last purged log id). Every write that openraft must be able to rely on after a crash, a vote
//! or an append, is flushed before it is acknowledged.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};

use openraft::OptionalSend;
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use sigil_types::TypeConfig;

use tokio::sync::mpsc;

use crate::codec::{decode, encode, index_key, io_err, key_index};

type SigilLogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
type SigilVote = openraft::type_config::alias::VoteOf<TypeConfig>;
type SigilEntry = sigil_types::LogEntry;

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";

/// The log store; cheap to clone (sled trees are handles).
#[derive(Clone)]
pub struct LogStore {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
    flusher: mpsc::UnboundedSender<IOFlushed<TypeConfig>>,
}

impl LogStore {
    /// Opens the log trees in `db` and starts its flusher task (on the current tokio runtime).
    pub fn open(db: &sled::Db) -> io::Result<Self> {
        let (flusher, pending) = mpsc::unbounded_channel();
        tokio::spawn(group_commit(db.clone(), pending));
        Ok(Self {
            db: db.clone(),
            log: db.open_tree("raft_log").map_err(io_err)?,
            meta: db.open_tree("raft_meta").map_err(io_err)?,
            flusher,
        })
    }

    fn read_meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> io::Result<Option<T>> {
        match self.meta.get(key).map_err(io_err)? {
            Some(bytes) => decode(std::str::from_utf8(key).unwrap_or("meta"), &bytes).map(Some),
            None => Ok(None),
        }
    }

    async fn write_meta_durably<T: serde::Serialize>(&self, key: &[u8], v: &T) -> io::Result<()> {
        self.meta.insert(key, encode(v)?).map_err(io_err)?;
        self.db.flush_async().await.map_err(io_err)?;
        Ok(())
    }

    fn last_entry_log_id(&self) -> io::Result<Option<SigilLogId>> {
        match self.log.last().map_err(io_err)? {
            Some((_, bytes)) => {
                let entry: SigilEntry = decode("log entry", &bytes)?;
                Ok(Some(entry.log_id))
            }
            None => Ok(None),
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<SigilEntry>> {
        let start = match range.start_bound() {
            Bound::Included(i) => Bound::Included(index_key(*i)),
            Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Bound::Included(index_key(*i)),
            Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        self.log
            .range::<[u8; 8], _>((start, end))
            .map(|item| {
                let (_, bytes) = item.map_err(io_err)?;
                decode("log entry", &bytes)
            })
            .collect()
    }

    async fn read_vote(&mut self) -> io::Result<Option<SigilVote>> {
        self.read_meta(VOTE)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> io::Result<LogState<TypeConfig>> {
        let last_purged_log_id: Option<SigilLogId> = self.read_meta(LAST_PURGED)?;
        let last_log_id = self.last_entry_log_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &SigilVote) -> io::Result<()> {
        // A vote must survive a crash, or this server could vote twice in one term.
        self.write_meta_durably(VOTE, vote).await
    }

    async fn save_committed(&mut self, committed: Option<SigilLogId>) -> io::Result<()> {
        // Not flushed: losing it only means re-applying from the last persisted apply point.
        self.meta
            .insert(COMMITTED, encode(&committed)?)
            .map_err(io_err)?;
        Ok(())
    }

    async fn read_committed(&mut self) -> io::Result<Option<SigilLogId>> {
        Ok(self.read_meta::<Option<SigilLogId>>(COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> io::Result<()>
    where
        I: IntoIterator<Item = SigilEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            batch.insert(&index_key(entry.log_id.index), encode(&entry)?);
        }
        self.log.apply_batch(batch).map_err(io_err)?;

        // The append is acknowledged (and may count toward a commit quorum) only once the
        // flusher has made it durable; meanwhile openraft may hand us the next batch.
        self.flusher
            .send(callback)
            .map_err(|_| io::Error::other("the log flusher has stopped"))
    }

    async fn truncate_after(&mut self, last_log_id: Option<SigilLogId>) -> io::Result<()> {
        let from = last_log_id.map_or(0, |id| id.index + 1);
        let mut batch = sled::Batch::default();
        for item in self.log.range(index_key(from)..) {
            let (key, _) = item.map_err(io_err)?;
            batch.remove(key);
        }
        self.log.apply_batch(batch).map_err(io_err)?;
        self.db.flush_async().await.map_err(io_err)?;
        Ok(())
    }

    async fn purge(&mut self, log_id: SigilLogId) -> io::Result<()> {
        // Record the purge point first: a crash between the two steps leaves extra entries
        // below it, which are harmless, never a gap above it.
        self.write_meta_durably(LAST_PURGED, &log_id).await?;
        let mut batch = sled::Batch::default();
        for item in self.log.range(..=index_key(log_id.index)) {
            let (key, _) = item.map_err(io_err)?;
            debug_assert!(key_index(&key).is_ok_and(|i| i <= log_id.index));
            batch.remove(key);
        }
        self.log.apply_batch(batch).map_err(io_err)?;
        Ok(())
    }
}

/// Group commit: waits for appends, flushes once for all that arrived meanwhile, then reports
/// each of them durable, in the order they were appended.
///
/// One sled flush covers every write issued before it started, so a burst of appends costs one
/// fsync instead of one each, while no append is reported before it is on disk.
async fn group_commit(db: sled::Db, mut pending: mpsc::UnboundedReceiver<IOFlushed<TypeConfig>>) {
    let mut batch = Vec::new();
    while pending.recv_many(&mut batch, 1024).await > 0 {
        let result = db.flush_async().await.map(|_| ()).map_err(io_err);
        for callback in batch.drain(..) {
            let result = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            };
            callback.io_completed(result);
        }
    }
}
