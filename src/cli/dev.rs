//! `sigil dev`: a whole local cluster in one command. It starts the servers in this process,
//! waits until they are ready, prints where they listen and what to try, and runs until Ctrl-C.
//! `sigil dev --smoke` instead submits the example plan, verifies a token on every server,
//! prints the result and exits: a one-command check that a build works.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};
use sigil_proto::v1::identity_service_client::IdentityServiceClient;
use sigil_proto::v1::{SignedIdentity, VerifyRequest};

use super::client::Client;
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

    /// Submit the example plan, verify a token on every server, print the result and exit.
    #[arg(long)]
    smoke: bool,
}

/// Runs `sigil dev`.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let cluster = LocalCluster::start(args.nodes, args.data_dir.as_deref()).await?;
    let result = match cluster.wait_ready(READY_WITHIN).await {
        Ok(leader) if args.smoke => smoke(&cluster, leader).await,
        Ok(leader) => serve(&cluster, leader).await,
        Err(err) => Err(err),
    };
    cluster.shutdown().await;
    result
}

async fn serve(cluster: &LocalCluster, leader: u64) -> anyhow::Result<()> {
    print!("{}", banner(cluster, leader));
    let signal = shutdown_signal().await?;
    tracing::info!(signal, "stopping the dev cluster");
    Ok(())
}

fn banner(cluster: &LocalCluster, leader: u64) -> String {
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
    let http = &nodes[0].http;
    text.push_str(&format!(
        "\nTry:\n\
         \x20 export SIGIL_ADDR={addresses}\n\
         \x20 sigil plan submit examples/plan.json\n\
         \x20 sigil keyring list\n\
         \x20 sigil keyring rotate --now\n\
         \x20 sigil operator raft list-peers\n\
         \x20 curl -s http://{http}/.well-known/jwks.json\n\
         \x20 curl -s http://{http}/v1/health\n\
         (or pass --address {addresses} to each command)\n\nPress Ctrl-C to stop.\n"
    ));
    text
}

/// Submits the example plan through a follower (so forwarding is exercised), then has every
/// server verify one of its tokens, and prints what happened as JSON.
async fn smoke(cluster: &LocalCluster, leader: u64) -> anyhow::Result<()> {
    let nodes = cluster.addrs();
    let entry = nodes.iter().find(|n| n.id != leader).unwrap_or(&nodes[0]);
    let plan = plan::parse_plan(EXAMPLE_PLAN, "examples/plan.json", None)?;
    let mut client = Client::new(std::slice::from_ref(&entry.grpc), READY_WITHIN)?;
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
        "token": {
            "workload": token.workload,
            "identity": token.identity,
            "key_id": token.key_id,
            "claims": claims,
        },
    }))
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
