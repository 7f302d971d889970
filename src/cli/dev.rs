//! `sigil dev`: a whole local cluster in one command. It starts the servers in this process,
//! waits until they are ready, prints where they listen and what to try, and runs until Ctrl-C.
//! `sigil dev --smoke` instead submits the example plan, verifies a token on every server,
//! prints the result and exits: a one-command check that a build works.
//!
//! ACLs stay on, as on a real cluster: once the servers are ready, `dev` bootstraps the ACL
//! system and prints the management token, so what works here works the same in production.
//! `sigil bench --local` reuses [`ready_and_bootstrapped`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};
use sigil_proto::v1::identity_service_client::IdentityServiceClient;
use sigil_proto::v1::{SignedIdentity, VerifyRequest};
use sigil_types::Plan;

use super::acl;
use super::client::{Client, Token};
use super::plan;
use crate::agent::shutdown_signal;
use crate::dev::{LocalCluster, NodeAddrs};

/// How long the cluster may take to elect a leader and create its first key.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// The example plan, built in so that `--smoke` works from any directory.
const EXAMPLE_PLAN: &str = include_str!("../../examples/plan.json");

/// Run a whole local cluster in this process, for trying Sigil out.
///
/// The servers listen on 127.0.0.1 with ports the OS picks and share one generated KEK. Their
/// data lives in a temporary directory removed on exit, unless `--data-dir` names one.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// How many servers.
    #[arg(long, default_value_t = 3)]
    nodes: usize,

    /// Keep the servers' data here instead of a temporary directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,

    /// Check that a plan without a token is refused, submit the example plan with the
    /// management token, verify a token on every server, print the result and exit.
    #[arg(long)]
    smoke: bool,
}

/// Runs `sigil dev`.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let cluster = LocalCluster::start(args.nodes, args.data_dir.as_deref()).await?;
    let result = match ready_and_bootstrapped(&cluster).await {
        Ok((leader, token)) if args.smoke => smoke(&cluster, leader, &token).await,
        Ok((leader, token)) => serve(&cluster, leader, &token).await,
        Err(err) => Err(err),
    };
    cluster.shutdown().await;
    result
}

/// Waits for the cluster, then bootstraps its ACL system; returns the leader and the
/// management token's secret.
pub async fn ready_and_bootstrapped(cluster: &LocalCluster) -> anyhow::Result<(u64, String)> {
    let leader = cluster.wait_ready(READY_WITHIN).await?;
    let addrs: Vec<String> = cluster.addrs().into_iter().map(|n| n.grpc).collect();
    let mut client = Client::new(&addrs, READY_WITHIN)?;
    let created = acl::bootstrap(&mut client)
        .await
        .context("bootstrapping the ACL system of the dev cluster")?;
    Ok((leader, created.secret_id))
}

async fn serve(cluster: &LocalCluster, leader: u64, token: &str) -> anyhow::Result<()> {
    print!("{}", banner(cluster, leader, token));
    let signal = shutdown_signal().await?;
    tracing::info!(signal, "stopping the dev cluster");
    Ok(())
}

fn banner(cluster: &LocalCluster, leader: u64, token: &str) -> String {
    let nodes = cluster.addrs();
    let addresses: Vec<&str> = nodes.iter().map(|n| n.grpc.as_str()).collect();
    let addresses = addresses.join(",");
    let mut text = format!(
        "\nSigil dev cluster: {} servers, leader is node {leader}\n\n",
        nodes.len()
    );
    for node in &nodes {
        text.push_str(&format!(
            "  node {}  gRPC {}  HTTP {}  JWKS http://{}/.well-known/jwks.json\n",
            node.id, node.grpc, node.http, node.http
        ));
    }
    let data = if cluster.data_is_temporary() {
        "removed on exit"
    } else {
        "kept"
    };
    text.push_str(&format!(
        "\n  data: {} ({data})\n",
        cluster.data_dir().display()
    ));
    text.push_str(
        "  ACLs: on and bootstrapped; SIGIL_TOKEN below is the management token, shown once\n",
    );
    let http = &nodes[0].http;
    text.push_str(&format!(
        "\nTry:\n\
         \x20 export SIGIL_ADDR={addresses}\n\
         \x20 export SIGIL_TOKEN={token}\n\
         \x20 sigil plan submit examples/plan.json\n\
         \x20 sigil acl policy apply web examples/policy-web.hcl\n\
         \x20 sigil acl token create --name web-deployer --policy web\n\
         \x20 sigil acl token self\n\
         \x20 sigil keyring list\n\
         \x20 sigil keyring rotate --now\n\
         \x20 sigil operator raft list-peers\n\
         \x20 curl -s http://{http}/.well-known/jwks.json\n\
         \x20 curl -s http://{http}/v1/health\n\
         (or pass --address {addresses} and --token to each command)\n\n\
         Press Ctrl-C to stop.\n"
    ));
    text
}

/// Shows that a plan without a token is refused, submits the example plan with the
/// management token through a follower (so forwarding is exercised), then has every server
/// verify one of its identities (verification needs no token), and prints what happened as
/// JSON. The token itself is not printed.
async fn smoke(cluster: &LocalCluster, leader: u64, token: &str) -> anyhow::Result<()> {
    let nodes = cluster.addrs();
    let entry = nodes.iter().find(|n| n.id != leader).unwrap_or(&nodes[0]);
    let plan = plan::parse_plan(EXAMPLE_PLAN, "examples/plan.json", None)?;
    let refused = refused_without_token(entry, &plan).await?;

    let mut client = Client::new(std::slice::from_ref(&entry.grpc), READY_WITHIN)?
        .with_token(Some(&Token::new(token)))?;
    let response = plan::submit(&mut client, &plan)
        .await
        .with_context(|| format!("submitting the example plan to node {}", entry.id))?;

    let identities: Vec<&SignedIdentity> = response
        .allocations
        .iter()
        .flat_map(|a| &a.identities)
        .collect();
    if identities.len() != plan.identity_count() {
        bail!(
            "the plan should mint {} identities, the server returned {}",
            plan.identity_count(),
            identities.len()
        );
    }
    let token = identities
        .iter()
        .find(|i| i.identity != "default")
        .unwrap_or(&identities[0]);

    let mut claims = Value::Null;
    for node in &nodes {
        claims = verify_on(node, &token.jwt).await?;
        if claims["nomad_job_id"] != plan.job.id.as_str() {
            bail!(
                "node {} verified the token with the wrong claims: {claims}",
                node.id
            );
        }
    }
    super::print_json(&json!({
        "result": "ok",
        "leader": leader,
        "submitted_to": entry.id,
        "plan_id": response.plan_id,
        "log_index": response.log_index,
        "allocations": response.allocations.len(),
        "identities": identities.len(),
        "verified_on": nodes.iter().map(|n| n.id).collect::<Vec<_>>(),
        "without_token": refused,
        "token": {
            "workload": token.workload,
            "identity": token.identity,
            "key_id": token.key_id,
            "claims": claims,
        },
    }))
}

/// Submits `plan` without a token and returns the refusal, failing unless it is
/// `Unauthenticated`: a dev cluster that accepted it would not be enforcing ACLs.
async fn refused_without_token(entry: &NodeAddrs, plan: &Plan) -> anyhow::Result<String> {
    let mut client = Client::new(std::slice::from_ref(&entry.grpc), READY_WITHIN)?;
    match plan::submit(&mut client, plan).await {
        Ok(_) => bail!("node {} accepted a plan without a token", entry.id),
        Err(err) if err.to_string().starts_with("Unauthenticated:") => Ok(err.to_string()),
        Err(err) => Err(err).context("a plan without a token should be Unauthenticated"),
    }
}

async fn verify_on(node: &NodeAddrs, jwt: &str) -> anyhow::Result<Value> {
    let mut client = Client::new(std::slice::from_ref(&node.grpc), READY_WITHIN)?;
    let request = VerifyRequest {
        token: jwt.to_owned(),
    };
    let response = client
        .call(request, |channel, request| async move {
            IdentityServiceClient::new(channel).verify(request).await
        })
        .await
        .with_context(|| format!("node {} did not verify the token", node.id))?;
    serde_json::from_str(&response.claims_json).context("the server sent claims that are not JSON")
}
