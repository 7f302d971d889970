//! Starting and stopping one Sigil server: storage, the Raft node, the gRPC and HTTP servers,
//! cluster bootstrap and the leader's background duties.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::SnapshotPolicy;
use sigil_keyring::Kek;
use sigil_proto::raft::raft_service_server::RaftServiceServer;
use sigil_proto::v1::acl_service_server::AclServiceServer;
use sigil_proto::v1::identity_service_server::IdentityServiceServer;
use sigil_proto::v1::keyring_service_server::KeyringServiceServer;
use sigil_proto::v1::operator_service_server::OperatorServiceServer;
use sigil_proto::v1::plan_service_server::PlanServiceServer;
use sigil_raft::{
    LinkFilter, LogStore, Network, PeerChannels, Raft, RaftTransport, SharedState,
    StateMachineStore,
};
use sigil_types::SigilNode;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::TcpListenerStream;

use crate::acl::AclSvc;
use crate::config::ServerConfig;
use crate::ctx::Ctx;
use crate::identity::IdentitySvc;
use crate::keyring::{KeyringSvc, run_duties};
use crate::keys::KeyCache;
use crate::operator::OperatorSvc;
use crate::plan::PlanSvc;

/// Largest message a client may send (big plans) or receive (their tokens).
const MAX_MESSAGE: usize = 64 << 20;

/// Why a server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Storage could not be opened.
    #[error("cannot open data dir {path}: {source}")]
    Storage {
        /// The data dir.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// openraft refused the configuration or failed to start.
    #[error("raft: {0}")]
    Raft(String),
    /// A listener has no local address.
    #[error("listener: {0}")]
    Listener(std::io::Error),
}

/// A running server.
pub struct ServerHandle {
    /// The server's shared context (Raft node, state, keys).
    pub ctx: Arc<Ctx>,
    /// The bound gRPC address.
    pub grpc_addr: SocketAddr,
    /// The bound HTTP address.
    pub http_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// The Raft node.
    pub fn raft(&self) -> &Raft {
        &self.ctx.raft
    }

    /// The applied state.
    pub fn state(&self) -> &SharedState {
        &self.ctx.state
    }

    /// The link filter tests use to cut this server off.
    pub fn links(&self) -> &LinkFilter {
        &self.ctx.filter
    }

    /// Stops serving, stops Raft, and waits until storage is closed.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if let Err(err) = self.ctx.raft.shutdown().await {
            tracing::warn!(error = %err, "raft did not shut down cleanly");
        }
        for task in self.tasks {
            let _ = task.await;
        }
        tracing::info!(node_id = self.ctx.id, "server stopped");
    }
}

/// Starts a server on already-bound listeners (so tests can bind `127.0.0.1:0`).
pub async fn start(
    mut config: ServerConfig,
    kek: Option<Kek>,
    grpc: TcpListener,
    http: TcpListener,
) -> Result<ServerHandle, StartError> {
    let grpc_addr = grpc.local_addr().map_err(StartError::Listener)?;
    let http_addr = http.local_addr().map_err(StartError::Listener)?;
    config
        .advertise_grpc
        .get_or_insert_with(|| grpc_addr.to_string());
    config
        .advertise_http
        .get_or_insert_with(|| http_addr.to_string());
    let config = Arc::new(config);

    let kek = kek.map(Arc::new);
    let keys = Arc::new(KeyCache::new(kek.clone()));
    let db = open_storage(&config).await?;
    let storage_err = |source| StartError::Storage {
        path: config.data_dir.display().to_string(),
        source,
    };
    let log = LogStore::open(&db).map_err(storage_err)?;
    let sm = StateMachineStore::open(&db, keys.clone()).map_err(storage_err)?;
    let state = sm.shared();
    drop(db);

    let channels = PeerChannels::default();
    let filter = LinkFilter::default();
    let network = Network::new(config.node_id, channels.clone(), filter.clone());
    let raft = Raft::new(
        config.node_id,
        Arc::new(raft_config(&config)?),
        network,
        log,
        sm,
    )
    .await
    .map_err(|e| StartError::Raft(e.to_string()))?;

    let ctx = Arc::new(Ctx {
        id: config.node_id,
        raft: raft.clone(),
        state,
        keys,
        channels,
        filter: filter.clone(),
        config: config.clone(),
    });
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = vec![
        tokio::spawn(serve_grpc(
            ctx.clone(),
            kek.clone(),
            grpc,
            shutdown_rx.clone(),
        )),
        tokio::spawn(serve_http(ctx.clone(), http, shutdown_rx.clone())),
        tokio::spawn(run_duties(ctx.clone(), kek, shutdown_rx.clone())),
    ];
    tasks.push(tokio::spawn(bootstrap(ctx.clone(), shutdown_rx)));
    tracing::info!(node_id = config.node_id, %grpc_addr, %http_addr, "server started");
    Ok(ServerHandle {
        ctx,
        grpc_addr,
        http_addr,
        shutdown,
        tasks,
    })
}

/// Opens sled, retrying briefly: a server restarted in the same process may find the previous
/// instance's file lock not yet released.
async fn open_storage(config: &ServerConfig) -> Result<sled::Db, StartError> {
    let path = config.data_dir.join("sigil.db");
    let storage_err = |source| StartError::Storage {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(&config.data_dir).map_err(storage_err)?;
    let locked = |err: &std::io::Error| {
        err.kind() == std::io::ErrorKind::WouldBlock || err.to_string().contains("lock")
    };
    let mut attempt = 0;
    loop {
        match sigil_raft::open_db(&path) {
            Ok(db) => return Ok(db),
            Err(err) if attempt < 50 && locked(&err) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => return Err(storage_err(err)),
        }
    }
}

fn raft_config(config: &ServerConfig) -> Result<openraft::Config, StartError> {
    let raft = &config.raft;
    let ms = |d: Duration| d.as_millis() as u64;
    openraft::Config {
        cluster_name: "sigil".into(),
        heartbeat_interval: ms(raft.heartbeat_interval),
        election_timeout_min: ms(raft.election_timeout_min),
        election_timeout_max: ms(raft.election_timeout_max),
        snapshot_policy: SnapshotPolicy::LogsSinceLast(raft.snapshot_after_entries),
        max_in_snapshot_log_to_keep: raft.snapshot_after_entries.min(1_000),
        install_snapshot_timeout: 10_000,
        // Pre-vote keeps a server that was cut off from raising the term, and so deposing a
        // healthy leader, when it comes back.
        enable_pre_vote: Some(true),
        ..Default::default()
    }
    .validate()
    .map_err(|e| StartError::Raft(e.to_string()))
}

async fn serve_grpc(
    ctx: Arc<Ctx>,
    kek: Option<Arc<Kek>>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<PlanServiceServer<PlanSvc>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(sigil_proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .ok();

    // The Raft transport (vote, append, snapshot, read index) takes no ACL token: it is for
    // servers only. Today anyone who can reach the gRPC port can call it; it is meant to sit
    // behind mutual TLS with server certificates, which is not built yet.
    let router = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(
            RaftServiceServer::new(RaftTransport::new(ctx.raft.clone(), ctx.filter.clone()))
                .max_decoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            PlanServiceServer::new(PlanSvc::new(ctx.clone()))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(IdentityServiceServer::new(IdentitySvc::new(ctx.clone())))
        .add_service(KeyringServiceServer::new(KeyringSvc::new(ctx.clone(), kek)))
        .add_service(OperatorServiceServer::new(OperatorSvc::new(ctx.clone())))
        .add_service(AclServiceServer::new(AclSvc::new(ctx.clone())))
        .add_service(health)
        .add_optional_service(reflection);
    // The builder's `tcp_nodelay` applies only to sockets tonic accepts itself; with our own
    // listener every accepted socket needs it set, or small responses wait on delayed ACKs.
    let incoming = TcpListenerStream::new(listener).map(|conn| {
        if let Ok(stream) = &conn {
            let _ = stream.set_nodelay(true);
        }
        conn
    });
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    if let Err(err) = router.serve_with_incoming_shutdown(incoming, stop).await {
        tracing::error!(node_id = ctx.id, error = %err, "gRPC server failed");
    }
}

async fn serve_http(ctx: Arc<Ctx>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let app = crate::http::router(ctx.clone());
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    if let Err(err) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!(node_id = ctx.id, error = %err, "HTTP server failed");
    }
}

/// Initializes the cluster exactly once: only the server with the lowest id among the
/// configured peers does it, only when storage shows no earlier initialization, and only once
/// every peer answers, so that no server is left out of the first membership.
async fn bootstrap(ctx: Arc<Ctx>, mut shutdown: watch::Receiver<bool>) {
    let peers = &ctx.config.peers;
    let lowest = peers.iter().map(|p| p.id).min();
    if lowest != Some(ctx.id) {
        return;
    }
    match ctx.raft.is_initialized().await {
        Ok(false) => {}
        Ok(true) => return,
        Err(err) => return tracing::error!(error = %err, "cannot read initialization state"),
    }
    let members: BTreeMap<_, _> = peers
        .iter()
        .map(|p| {
            let http_addr = if p.id == ctx.id {
                ctx.config.advertise_http.clone().unwrap_or_default()
            } else {
                p.http_addr.clone()
            };
            (
                p.id,
                SigilNode {
                    addr: p.addr.clone(),
                    http_addr,
                },
            )
        })
        .collect();
    loop {
        let unreachable = unreachable_peers(&ctx, &members).await;
        if unreachable.is_empty() {
            break;
        }
        tracing::info!(waiting_for = ?unreachable, "waiting for every peer before initializing");
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = shutdown.changed() => return,
        }
    }
    match ctx.raft.initialize(members).await {
        Ok(()) => tracing::info!(node_id = ctx.id, "cluster initialized"),
        Err(err) => tracing::info!(error = %err, "cluster already initialized"),
    }
}

async fn unreachable_peers(ctx: &Ctx, members: &BTreeMap<u64, SigilNode>) -> Vec<u64> {
    let mut missing = Vec::new();
    for (id, node) in members {
        if *id == ctx.id {
            continue;
        }
        let probe = tokio::net::TcpStream::connect(&node.addr);
        if !matches!(
            tokio::time::timeout(Duration::from_millis(500), probe).await,
            Ok(Ok(_))
        ) {
            missing.push(*id);
        }
    }
    missing
}
