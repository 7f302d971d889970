//! openraft's storage conformance suite, run against Sigil's sled log and state-machine stores.
//!
//! The suite drives every `RaftLogStorage` and `RaftStateMachine` method through the sequences
//! openraft relies on (initial state, membership recovery, truncation, purge, snapshots) and
//! fails on any deviation, so passing it is evidence the stores keep openraft's contract.

use std::sync::Arc;

use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};
use sigil_keyring::Keyring;
use sigil_raft::{KeyringObserver, LogStore, StateMachineStore};
use sigil_types::TypeConfig;

struct NoObserver;

impl KeyringObserver for NoObserver {
    fn keyring_changed(&self, _keyring: &Keyring) {}
}

struct SledBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for SledBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = sigil_raft::open_db(&dir.path().join("db")).expect("sled opens");
        let log = LogStore::open(&db).expect("log store opens");
        let sm = StateMachineStore::open(&db, Arc::new(NoObserver)).expect("state opens");
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_stores_pass_openraft_storage_suite() {
    Suite::test_all(SledBuilder)
        .await
        .expect("every storage suite case passes");
}
