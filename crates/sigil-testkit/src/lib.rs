//! Test fixtures for Sigil: in-process clusters of real servers on `127.0.0.1:0`, link cutting,
//! restarts, and bounded waiting on conditions. Used by the end-to-end tests in `tests/`.
//!
//! The vocabulary follows hashicorp/raft's tests: [`Cluster::start`], [`Cluster::leader`],
//! [`Cluster::isolate`], [`eventually`]. Nothing here sleeps for a fixed time to let something
//! happen; every wait polls a condition until a deadline and fails with what it waited for.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sigil_keyring::Kek;
use sigil_proto::v1::acl_service_client::AclServiceClient;
use sigil_proto::v1::identity_service_client::IdentityServiceClient;
use sigil_proto::v1::keyring_service_client::KeyringServiceClient;
use sigil_proto::v1::operator_service_client::OperatorServiceClient;
use sigil_proto::v1::plan_service_client::PlanServiceClient;
use sigil_server::{PeerConfig, ServerConfig, ServerHandle};
use sigil_types::{NodeId, Plan};
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// How long cluster-level waits may take before a test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `check` every 50 ms until it returns `Some`, or panics naming `what` at `deadline`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Installs a test log subscriber once (`RUST_LOG` controls it; quiet by default).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_test_writer()
        .try_init();
}

/// One server slot of a cluster: its configuration, and the running server when up.
struct Slot {
    config: ServerConfig,
    kek: Option<Kek>,
    grpc: SocketAddr,
    http: SocketAddr,
    server: Option<ServerHandle>,
}

/// A cluster of real Sigil servers in this process.
pub struct Cluster {
    slots: Vec<Slot>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` servers (ids 1..=n) sharing one KEK, and waits until one leads and the
    /// keyring has an active key that every server has unwrapped.
    pub async fn start(n: usize) -> Cluster {
        let cluster = Self::start_with(n, |_, _| {}).await;
        cluster.wait_ready().await;
        cluster
    }

    /// Starts `n` servers with ACLs enabled, and waits as [`Cluster::start`] does. Nothing is
    /// bootstrapped: the test calls `AclService.Bootstrap` itself.
    pub async fn start_with_acls(n: usize) -> Cluster {
        let cluster = Self::start_with(n, |config, _| config.acl.enabled = true).await;
        cluster.wait_ready().await;
        cluster
    }

    /// Starts `n` servers, letting `tweak` adjust each one's config and KEK first; does not wait.
    /// ACLs are disabled unless `tweak` enables them: tests that are not about ACLs need no
    /// tokens.
    pub async fn start_with(
        n: usize,
        mut tweak: impl FnMut(&mut ServerConfig, &mut Option<Kek>),
    ) -> Cluster {
        init_logging();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let kek = Kek::generate();
        let mut listeners = Vec::new();
        for _ in 0..n {
            let grpc = TcpListener::bind("127.0.0.1:0").await.expect("bind gRPC");
            let http = TcpListener::bind("127.0.0.1:0").await.expect("bind HTTP");
            listeners.push((grpc, http));
        }
        let peers: Vec<PeerConfig> = listeners
            .iter()
            .enumerate()
            .map(|(i, (g, h))| PeerConfig {
                id: i as NodeId + 1,
                addr: g.local_addr().expect("bound").to_string(),
                http_addr: h.local_addr().expect("bound").to_string(),
            })
            .collect();
        let mut slots = Vec::new();
        for (i, (grpc, http)) in listeners.into_iter().enumerate() {
            let id = i as NodeId + 1;
            let mut config = ServerConfig::new(id, dir.path().join(format!("node-{id}")));
            config.peers = peers.clone();
            config.keyring.check_interval = Duration::from_millis(200);
            config.acl.enabled = false;
            let mut node_kek = Some(Kek::from_base64(&kek.to_base64()).expect("KEK round trip"));
            tweak(&mut config, &mut node_kek);
            let (grpc_addr, http_addr) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
            let server = sigil_server::start(config.clone(), clone_kek(&node_kek), grpc, http)
                .await
                .expect("the server starts");
            slots.push(Slot {
                config,
                kek: node_kek,
                grpc: grpc_addr,
                http: http_addr,
                server: Some(server),
            });
        }
        Cluster { slots, _dir: dir }
    }

    /// Waits until a leader is known everywhere and every running server is ready.
    pub async fn wait_ready(&self) {
        eventually("every running server to be ready", DEADLINE, || async {
            let ready = self
                .running()
                .all(|id| sigil_server::health_of(&self.server(id).ctx).ready);
            ready.then_some(())
        })
        .await;
    }

    /// Ids of the servers that are up.
    pub fn running(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.server.is_some())
            .map(|(i, _)| i as NodeId + 1)
    }

    /// The running server `id`.
    pub fn server(&self, id: NodeId) -> &ServerHandle {
        self.slot(id)
            .server
            .as_ref()
            .unwrap_or_else(|| panic!("server {id} is not running"))
    }

    fn slot(&self, id: NodeId) -> &Slot {
        &self.slots[(id - 1) as usize]
    }

    /// The gRPC address of server `id`.
    pub fn grpc_addr(&self, id: NodeId) -> SocketAddr {
        self.slot(id).grpc
    }

    /// The HTTP address of server `id`.
    pub fn http_addr(&self, id: NodeId) -> SocketAddr {
        self.slot(id).http
    }

    /// Waits until the running servers not cut off agree on one leader, and returns it.
    pub async fn leader(&self) -> NodeId {
        eventually(
            "one leader agreed by every connected server",
            DEADLINE,
            || async {
                let connected: Vec<_> = self
                    .running()
                    .filter(|id| !self.server(*id).links().any_blocked())
                    .collect();
                let leaders: Vec<_> = connected
                    .iter()
                    .map(|id| self.server(*id).ctx.leader().map(|l| l.id))
                    .collect();
                let first = leaders.first().copied().flatten()?;
                let agreed = leaders.iter().all(|l| *l == Some(first));
                let leads = self.slot(first).server.as_ref()?.ctx.is_leader();
                (agreed && leads).then_some(first)
            },
        )
        .await
    }

    /// A running server that is not the leader.
    pub async fn follower(&self) -> NodeId {
        let leader = self.leader().await;
        self.running()
            .find(|id| *id != leader)
            .expect("a running follower")
    }

    /// Cuts every link between `id` and the other servers, both ways.
    pub fn isolate(&self, id: NodeId) {
        for other in self.running().filter(|o| *o != id) {
            self.server(id).links().block(other);
            self.server(other).links().block(id);
        }
    }

    /// Restores every link.
    pub fn heal(&self) {
        for id in self.running() {
            self.server(id).links().clear();
        }
    }

    /// Stops server `id` (its data stays).
    pub async fn stop(&mut self, id: NodeId) {
        let server = self.slots[(id - 1) as usize]
            .server
            .take()
            .expect("server is running");
        server.shutdown().await;
    }

    /// Stops server `id` and deletes its data, as if its disk were replaced.
    pub async fn stop_and_wipe(&mut self, id: NodeId) {
        self.stop(id).await;
        let dir = &self.slot(id).config.data_dir;
        std::fs::remove_dir_all(dir).expect("the data dir is removed");
    }

    /// Starts server `id` again on the same addresses and data.
    pub async fn restart(&mut self, id: NodeId) {
        let slot = &self.slots[(id - 1) as usize];
        assert!(slot.server.is_none(), "server {id} is still running");
        let grpc = bind_again(slot.grpc).await;
        let http = bind_again(slot.http).await;
        let server = sigil_server::start(slot.config.clone(), clone_kek(&slot.kek), grpc, http)
            .await
            .expect("the server restarts");
        self.slots[(id - 1) as usize].server = Some(server);
    }

    /// A plan client connected to server `id`.
    pub async fn plans(&self, id: NodeId) -> PlanServiceClient<Channel> {
        PlanServiceClient::new(self.channel(id).await)
    }

    /// An identity client connected to server `id`.
    pub async fn identities(&self, id: NodeId) -> IdentityServiceClient<Channel> {
        IdentityServiceClient::new(self.channel(id).await)
    }

    /// A keyring client connected to server `id`.
    pub async fn keyring(&self, id: NodeId) -> KeyringServiceClient<Channel> {
        KeyringServiceClient::new(self.channel(id).await)
    }

    /// An operator client connected to server `id`.
    pub async fn operator(&self, id: NodeId) -> OperatorServiceClient<Channel> {
        OperatorServiceClient::new(self.channel(id).await)
    }

    /// An ACL client connected to server `id`.
    pub async fn acl(&self, id: NodeId) -> AclServiceClient<Channel> {
        AclServiceClient::new(self.channel(id).await)
    }

    async fn channel(&self, id: NodeId) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc_addr(id)))
            .expect("a valid URI")
            .connect()
            .await
            .expect("connects to the server")
    }

    /// The JWKS document server `id` serves, as JSON.
    pub async fn jwks(&self, id: NodeId) -> serde_json::Value {
        let url = format!("http://{}/.well-known/jwks.json", self.http_addr(id));
        let response = reqwest::get(&url).await.expect("JWKS request");
        assert!(
            response.status().is_success(),
            "JWKS of {id}: {}",
            response.status()
        );
        response.json().await.expect("JWKS is JSON")
    }

    /// Shuts every server down.
    pub async fn shutdown(mut self) {
        for slot in &mut self.slots {
            if let Some(server) = slot.server.take() {
                server.shutdown().await;
            }
        }
    }
}

/// A request carrying `authorization: Bearer <token>` (an ACL secret or a workload JWT).
pub fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {token}")
        .parse()
        .expect("a token is valid ASCII metadata");
    request.metadata_mut().insert("authorization", value);
    request
}

fn clone_kek(kek: &Option<Kek>) -> Option<Kek> {
    kek.as_ref()
        .map(|k| Kek::from_base64(&k.to_base64()).expect("KEK round trip"))
}

async fn bind_again(addr: SocketAddr) -> TcpListener {
    eventually(
        &format!("{addr} to be free again"),
        Duration::from_secs(10),
        || async { TcpListener::bind(addr).await.ok() },
    )
    .await
}

/// The example plan of the tests: job `web` in `default`, group `frontend` with tasks `nginx`
/// (plus a named Vault identity with a TTL) and `sidecar`, and service `http`.
pub fn sample_plan(plan_id: &str, placements: usize) -> Plan {
    let place: Vec<_> = (0..placements)
        .map(|i| serde_json::json!({"group": "frontend", "node_id": format!("client-{i}")}))
        .collect();
    serde_json::from_value(serde_json::json!({
        "plan_id": plan_id,
        "job": {
            "namespace": "default",
            "id": "web",
            "groups": [{
                "name": "frontend",
                "tasks": [
                    {"name": "nginx",
                     "identities": [{"name": "vault_default", "aud": ["vault.io"], "ttl_seconds": 3600}],
                     "vault": {"role": "web-role", "namespace": "ops"}},
                    {"name": "sidecar"}
                ],
                "services": [{"name": "http"}]
            }]
        },
        "place": place
    }))
    .expect("the sample plan is a valid plan")
}
