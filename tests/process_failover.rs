//! Process-level failover (design section 7, layer 4): three real `sigil agent` processes with
//! ACLs on (the default), bootstrapped through `sigil acl bootstrap`, the leader killed with
//! SIGKILL, and every token issued before and after the failover verified by an independent JWT
//! library (`jsonwebtoken`) against the JWKS a survivor serves over HTTP.
//!
//! Everything runs on 127.0.0.1. Every wait polls a condition until a deadline; every agent is
//! killed when the test ends, pass or fail, and a failing test prints the agents' logs.

mod common;

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{DEADLINE, run_sigil};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sigil_keyring::Kek;
use sigil_proto::v1::keyring_service_client::KeyringServiceClient;
use sigil_proto::v1::plan_service_client::PlanServiceClient;
use sigil_proto::v1::{ListKeysRequest, SubmitPlanRequest, SubmitPlanResponse};
use sigil_testkit::{authorized, eventually};
use sigil_types::Plan;
use tonic::Code;

/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(100);

/// The example plan: job `web` in namespace `default`, two allocations of four identities.
const EXAMPLE_PLAN: &str = include_str!("../examples/plan.json");

/// The agents' default audience (the config does not override it).
const DEFAULT_AUDIENCE: &str = "nomadproject.io";

/// One agent process and where it listens.
struct Agent {
    id: u64,
    grpc: String,
    http: String,
    config: PathBuf,
    child: Option<Child>,
}

/// Three agents in a temporary directory. Dropping it kills every agent still running, and
/// when the test is failing, prints each agent's log.
struct Cluster {
    dir: tempfile::TempDir,
    agents: Vec<Agent>,
}

impl Cluster {
    /// Writes three config files with ports the OS picked and starts an agent on each, sharing
    /// one KEK through `SIGIL_KEK`.
    fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("create the test directory");
        let ports = free_ports(6);
        let mut agents: Vec<Agent> = (0..3)
            .map(|i| Agent {
                id: i as u64 + 1,
                grpc: format!("127.0.0.1:{}", ports[2 * i]),
                http: format!("127.0.0.1:{}", ports[2 * i + 1]),
                config: dir.path().join(format!("node-{}.toml", i + 1)),
                child: None,
            })
            .collect();
        let peers: Vec<String> = agents
            .iter()
            .map(|a| {
                format!(
                    "{{ id = {}, addr = {:?}, http_addr = {:?} }}",
                    a.id, a.grpc, a.http
                )
            })
            .collect();
        for agent in &agents {
            let data_dir = dir.path().join(format!("data-{}", agent.id));
            let config = format!(
                "node_id = {}\ndata_dir = {:?}\ngrpc_addr = {:?}\nhttp_addr = {:?}\n\
                 peers = [{}]\n\n[raft]\nheartbeat_interval = \"100ms\"\n\
                 election_timeout_min = \"500ms\"\nelection_timeout_max = \"1000ms\"\n",
                agent.id,
                data_dir.display().to_string(),
                agent.grpc,
                agent.http,
                peers.join(", ")
            );
            std::fs::write(&agent.config, config).expect("write an agent config");
        }

        let kek = Kek::generate();
        for agent in &mut agents {
            agent.child = Some(spawn_agent(dir.path(), agent, kek.to_base64().as_str()));
        }
        Cluster { dir, agents }
    }

    fn agent(&self, id: u64) -> &Agent {
        self.agents
            .iter()
            .find(|a| a.id == id)
            .expect("a known node id")
    }

    /// Kills node `id` with SIGKILL (what `Child::kill` sends on Unix) and reaps it.
    fn kill(&mut self, id: u64) {
        let agent = self
            .agents
            .iter_mut()
            .find(|a| a.id == id)
            .expect("a known node id");
        let mut child = agent.child.take().expect("the agent is running");
        child.kill().expect("SIGKILL the agent");
        child.wait().expect("reap the agent");
    }

    /// Fails at once, instead of at a deadline, when an agent that should run has exited.
    fn assert_running(&mut self) {
        for agent in &mut self.agents {
            if let Some(child) = &mut agent.child {
                let status = child.try_wait().expect("query the agent process");
                assert!(
                    status.is_none(),
                    "node {} exited unexpectedly: {status:?}",
                    agent.id
                );
            }
        }
    }

    /// Polls the health of `ids` until all are ready and agree on one leader among `ids`.
    async fn wait_for_leader(&mut self, ids: &[u64], http: &reqwest::Client) -> u64 {
        let deadline = Instant::now() + DEADLINE;
        loop {
            self.assert_running();
            let mut leaders = Vec::new();
            for id in ids {
                leaders.push(ready_leader(http, &self.agent(*id).http).await);
            }
            if let Some(Some(leader)) = leaders.first().copied()
                && leaders.iter().all(|l| *l == Some(leader))
                && ids.contains(&leader)
            {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "nodes {ids:?} did not agree on a ready leader among themselves within \
                 {DEADLINE:?}; last seen: {leaders:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for agent in &mut self.agents {
            if let Some(mut child) = agent.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            for agent in &self.agents {
                for stream in ["stdout", "stderr"] {
                    let path = log_path(self.dir.path(), agent.id, stream);
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    eprintln!("===== node {} {stream} =====\n{text}", agent.id);
                }
            }
        }
    }
}

/// A failover loses no acknowledged plan and every token stays verifiable, with ACLs enforced.
///
/// Phases: three agents become ready; `sigil acl bootstrap` returns the management token, and
/// `sigil plan submit` without a token is refused as Unauthenticated (so ACLs are really on);
/// a plan submitted with the token to a follower is forwarded and applies;
/// the leader is killed with SIGKILL; the two survivors elect one of themselves; `sigil plan
/// submit`, given the dead leader's address first, moves on and applies a second plan; a
/// resubmission of the first plan is answered from replicated state (exactly once across the
/// failover); and every token of both plans verifies with `jsonwebtoken` against a survivor's
/// JWKS, with the active key as `kid` and the job's claims. Together these prove guarantees 1,
/// 2, 3 and 6 hold across the loss of the leader process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_and_every_token_still_verifies_independently() {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("build the HTTP client");

    // Phase 1: three agents, one leader, every health endpoint 200.
    let mut cluster = Cluster::start();
    let all = [1, 2, 3];
    let leader = cluster.wait_for_leader(&all, &http).await;
    let follower = *all.iter().find(|id| **id != leader).expect("a follower");

    // Phase 2: the CLI bootstraps the ACL system; without a token a plan is refused.
    let every = [1, 2, 3].map(|id| cluster.agent(id).grpc.clone()).join(",");
    let token = bootstrap_with_cli(&every).await;
    let me = run_sigil(
        &["acl", "token", "self", "--json", "--address", &every],
        Some(&token),
        None,
    )
    .await;
    let me: Value = serde_json::from_slice(&me.stdout).expect("acl token self prints JSON");
    assert_eq!(
        me["type"], "management",
        "the bootstrap token is a management token"
    );
    let plan_file = cluster.dir.path().join("plan.json");
    std::fs::write(&plan_file, EXAMPLE_PLAN).expect("write the plan file");
    let plan_path = plan_file.to_str().expect("a UTF-8 path");
    let refused = run_sigil(
        &["plan", "submit", "--address", &every, plan_path],
        None,
        None,
    )
    .await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "a plan without a token is refused; stdout: {}",
        String::from_utf8_lossy(&refused.stdout)
    );
    assert!(
        stderr.contains("Unauthenticated"),
        "the refusal says Unauthenticated: {stderr}"
    );

    // Phase 3: a plan sent with the token to a follower is forwarded to the leader and applies.
    let first_plan = example_plan("failover-1");
    let first = submit_with_retry(&cluster.agent(follower).grpc, &token, &first_plan).await;
    assert_eq!(
        first.plan_id, "failover-1",
        "the answer is for the submitted plan"
    );
    assert_eq!(
        first.allocations.len(),
        2,
        "both placements became allocations"
    );
    assert!(!first.replayed, "the first submission really applied");

    // Phase 4: SIGKILL the leader; the survivors elect a new one among themselves.
    cluster.kill(leader);
    let survivors: Vec<u64> = all.into_iter().filter(|id| *id != leader).collect();
    let new_leader = cluster.wait_for_leader(&survivors, &http).await;
    assert_ne!(new_leader, leader, "a survivor leads");

    // Phase 5: the CLI, pointed first at the dead leader, moves on and applies a second plan.
    let addresses = format!(
        "{},{}",
        cluster.agent(leader).grpc,
        cluster.agent(survivors[0]).grpc
    );
    let second = submit_with_cli(plan_path, &addresses, &token, "failover-2").await;
    assert_eq!(
        second["plan_id"], "failover-2",
        "the CLI answered for the second plan"
    );
    assert_eq!(second["replayed"], false, "the second plan really applied");
    let second_allocs = second["allocations"].as_array().expect("allocations array");
    assert_eq!(second_allocs.len(), 2, "both placements of the second plan");

    // Phase 6: the first plan, resubmitted to a survivor, is answered from replicated state.
    let replay = submit_with_retry(&cluster.agent(new_leader).grpc, &token, &first_plan).await;
    assert!(
        replay.replayed,
        "a retry after failover returns the first result"
    );
    let ids = |r: &SubmitPlanResponse| r.allocations.iter().map(|a| a.id.clone()).collect();
    let (first_ids, replay_ids): (Vec<String>, Vec<String>) = (ids(&first), ids(&replay));
    assert_eq!(
        replay_ids, first_ids,
        "the same allocations, not a second placement"
    );

    // Phase 7: every token verifies independently against a survivor's JWKS.
    let survivor = cluster.agent(survivors[1]);
    let jwks: JwkSet = http
        .get(format!("http://{}/.well-known/jwks.json", survivor.http))
        .send()
        .await
        .expect("fetch the JWKS")
        .json()
        .await
        .expect("the JWKS is a JWK set");
    let active = active_key_id(&survivor.grpc, &token).await;
    let mut tokens = Vec::new();
    for alloc in &first.allocations {
        for identity in &alloc.identities {
            tokens.push((
                alloc.id.clone(),
                identity.identity.clone(),
                identity.jwt.clone(),
            ));
            assert_eq!(
                identity.key_id, active,
                "plan 1 was signed with the active key"
            );
        }
    }
    for alloc in second_allocs {
        for identity in alloc["identities"].as_array().expect("identities array") {
            let field = |name: &str| identity[name].as_str().expect(name).to_owned();
            tokens.push((field_of(alloc, "id"), field("identity"), field("jwt")));
            assert_eq!(
                field("key_id"),
                active,
                "plan 2 was signed with the active key"
            );
        }
    }
    assert_eq!(
        tokens.len(),
        16,
        "two plans of two allocations of four identities each"
    );
    for (alloc_id, identity, jwt) in &tokens {
        verify_independently(&jwks, jwt, &active, alloc_id, identity);
    }
}

/// Checks one token with `jsonwebtoken` only: signature by the JWK named by `kid`, audience,
/// time claims, and the exact `kid` and Nomad claims.
fn verify_independently(jwks: &JwkSet, jwt: &str, kid: &str, alloc_id: &str, identity: &str) {
    let header = jsonwebtoken::decode_header(jwt).expect("the token has a JOSE header");
    assert_eq!(header.alg, Algorithm::EdDSA, "Sigil signs with EdDSA");
    assert_eq!(
        header.kid.as_deref(),
        Some(kid),
        "the token names the active key"
    );
    let jwk = jwks
        .find(kid)
        .expect("a survivor publishes the signing key");
    let key = DecodingKey::from_jwk(jwk).expect("the JWK is an Ed25519 public key");

    let audience = if identity == "vault_default" {
        "vault.io"
    } else {
        DEFAULT_AUDIENCE
    };
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["sub", "aud"]);
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .unwrap_or_else(|e| panic!("token of {alloc_id}/{identity} rejected: {e}"))
        .claims;

    assert_eq!(
        claims["nomad_job_id"], "web",
        "job claim of {alloc_id}/{identity}"
    );
    assert_eq!(
        claims["nomad_namespace"], "default",
        "namespace of {alloc_id}/{identity}"
    );
    assert_eq!(
        claims["nomad_allocation_id"], alloc_id,
        "allocation of {identity}"
    );
    let sub = claims["sub"].as_str().expect("a sub claim");
    assert!(
        sub.ends_with(&format!(":{identity}")),
        "sub {sub} names identity {identity}"
    );
}

/// The example plan with `plan_id`.
fn example_plan(plan_id: &str) -> SubmitPlanRequest {
    let mut value: Value = serde_json::from_str(EXAMPLE_PLAN).expect("the example is JSON");
    value["plan_id"] = Value::String(plan_id.to_owned());
    let plan: Plan = serde_json::from_value(value).expect("the example is a plan");
    plan.validate().expect("the example plan is valid");
    sigil_server::convert::plan_to_proto(&plan)
}

/// Submits `plan` to `addr` with `token`, retrying `Unavailable` (the same request, so the same
/// plan id) until the deadline; any other error fails the test.
async fn submit_with_retry(
    addr: &str,
    token: &str,
    plan: &SubmitPlanRequest,
) -> SubmitPlanResponse {
    let endpoint = format!("http://{addr}");
    eventually(
        &format!("plan {} applied via {addr}", plan.plan_id),
        DEADLINE,
        || async {
            let mut client = PlanServiceClient::connect(endpoint.clone()).await.ok()?;
            let mut request = authorized(plan.clone(), token);
            request.set_timeout(Duration::from_secs(10));
            match client.submit(request).await {
                Ok(response) => Some(response.into_inner()),
                Err(status) if status.code() == Code::Unavailable => None,
                Err(status) => panic!("plan {} failed: {status}", plan.plan_id),
            }
        },
    )
    .await
}

/// Runs `sigil acl bootstrap --json` against `addresses` and returns the management secret.
/// The CLI retries `Unavailable` itself, so a leader elected a moment ago is fine.
async fn bootstrap_with_cli(addresses: &str) -> String {
    let args = [
        "acl",
        "bootstrap",
        "--json",
        "--timeout",
        "30s",
        "--address",
        addresses,
    ];
    let output = run_sigil(&args, None, None).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "sigil acl bootstrap failed: {stderr}"
    );
    let created: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("sigil acl bootstrap printed no JSON ({e}); stderr: {stderr}"));
    assert_eq!(
        created["type"], "management",
        "bootstrap creates a management token"
    );
    field_of(&created, "secret_id")
}

/// Runs `sigil plan submit` with `token` in `SIGIL_TOKEN` and returns its JSON output.
async fn submit_with_cli(plan_file: &str, addresses: &str, token: &str, plan_id: &str) -> Value {
    let args = [
        "plan",
        "submit",
        "--plan-id",
        plan_id,
        "--timeout",
        "30s",
        "--address",
        addresses,
        plan_file,
    ];
    let output = run_sigil(&args, Some(token), None).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "sigil plan submit failed: {stderr}"
    );
    assert!(
        !stderr.contains(token),
        "the CLI never prints the token: {stderr}"
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("sigil plan submit printed no JSON ({e}); stderr: {stderr}"))
}

/// The id of the active key as a server lists it.
async fn active_key_id(addr: &str, token: &str) -> String {
    let mut client = KeyringServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect to a survivor");
    let keys = client
        .list(authorized(ListKeysRequest {}, token))
        .await
        .expect("list keys")
        .into_inner()
        .keys;
    let active: Vec<_> = keys.iter().filter(|k| k.state == "active").collect();
    assert_eq!(active.len(), 1, "exactly one active key: {keys:?}");
    active[0].key_id.clone()
}

/// The leader a server reports when `/v1/health` says it is ready (200), else `None`.
async fn ready_leader(http: &reqwest::Client, addr: &str) -> Option<u64> {
    let response = http
        .get(format!("http://{addr}/v1/health"))
        .send()
        .await
        .ok()?;
    if response.status() != reqwest::StatusCode::OK {
        return None;
    }
    let health: Value = response.json().await.ok()?;
    health["leader_id"].as_u64()
}

fn spawn_agent(dir: &Path, agent: &Agent, kek: &str) -> Child {
    let log = |stream| File::create(log_path(dir, agent.id, stream)).expect("create a log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_sigil"));
    command
        .arg("agent")
        .arg("--config")
        .arg(&agent.config)
        .env("SIGIL_KEK", kek)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log("stdout")))
        .stderr(Stdio::from(log("stderr")));
    for var in OVERRIDE_VARS {
        // An override left in the environment would win over the config file.
        command.env_remove(var);
    }
    command.spawn().expect("spawn sigil agent")
}

/// Environment variables `sigil agent` reads as overrides of its config file.
const OVERRIDE_VARS: [&str; 8] = [
    "SIGIL_CONFIG",
    "SIGIL_NODE_ID",
    "SIGIL_DATA_DIR",
    "SIGIL_GRPC_ADDR",
    "SIGIL_HTTP_ADDR",
    "SIGIL_ADVERTISE_GRPC",
    "SIGIL_ADVERTISE_HTTP",
    "SIGIL_PEERS",
];

fn log_path(dir: &Path, id: u64, stream: &str) -> PathBuf {
    dir.join(format!("node-{id}.{stream}.log"))
}

/// `n` distinct ports the OS considers free. All listeners are held until every port is
/// chosen, so none repeats; they are dropped before the agents bind. Another process could
/// take a port in between, which is acceptable on a test machine.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("a bound address").port())
        .collect()
}

fn field_of(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {value}"))
        .to_owned()
}
