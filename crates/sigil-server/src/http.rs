//! The HTTP endpoints every server publishes: JWKS and OIDC discovery for verifiers, health for
//! operators and load balancers.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use openraft::async_runtime::watch::WatchReceiver;
use serde::Serialize;
use sigil_identity::{OidcDiscovery, jwks_max_age};

use crate::ctx::{Ctx, now_ms};

/// The HTTP routes of one server.
pub fn router(ctx: Arc<Ctx>) -> Router {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route(
            "/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/v1/health", get(health))
        .route("/v1/metrics", get(metrics))
        .with_state(ctx)
}

async fn jwks(State(ctx): State<Arc<Ctx>>) -> Response {
    let view = ctx.keys.view();
    let Some(jwks) = view.jwks else {
        let reason = view
            .problem
            .unwrap_or_else(|| "the keyring has no keys yet".into());
        return (StatusCode::SERVICE_UNAVAILABLE, reason).into_response();
    };
    let threshold = ctx.config.keyring.rotation_threshold.as_millis() as u64;
    let max_age = jwks_max_age(view.newest_create_time_ms, threshold, now_ms()).as_secs();
    let cache = format!("public, max-age={max_age}");
    (
        [(header::CACHE_CONTROL, cache)],
        Json(jwks.as_ref().clone()),
    )
        .into_response()
}

async fn openid_configuration(State(ctx): State<Arc<Ctx>>) -> Response {
    match &ctx.config.issuer {
        Some(issuer) => Json(OidcDiscovery::new(issuer)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "OIDC discovery is off: no issuer is configured",
        )
            .into_response(),
    }
}

/// The body of `/v1/health`.
#[derive(Debug, Serialize)]
pub struct Health {
    /// True when a leader is known and every key unwrapped: the server can serve.
    pub ready: bool,
    /// This server's id.
    pub node_id: u64,
    /// `leader`, `follower`, `candidate` or `learner`.
    pub role: String,
    /// The leader's id, if known.
    pub leader_id: Option<u64>,
    /// The current term.
    pub term: u64,
    /// The last applied log index.
    pub applied_index: u64,
    /// Number of keys unwrapped and published.
    pub keys: usize,
    /// What keeps the server from being ready.
    pub problems: Vec<String>,
}

async fn health(State(ctx): State<Arc<Ctx>>) -> Response {
    let health = health_of(&ctx);
    let status = if health.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health)).into_response()
}

/// This server's health.
pub fn health_of(ctx: &Ctx) -> Health {
    let (role, leader_id, term, applied_index) = {
        let metrics = ctx.raft.metrics();
        let m = metrics.borrow_watched();
        let role = format!("{:?}", m.state).to_lowercase();
        (
            role,
            m.current_leader,
            m.current_term,
            m.last_applied.map_or(0, |id| id.index),
        )
    };
    let view = ctx.keys.view();
    let mut problems = Vec::new();
    if leader_id.is_none() {
        problems.push("no leader is known".to_owned());
    }
    if let Some(problem) = view.problem {
        problems.push(problem);
    } else if view.active.is_none() {
        problems.push("the keyring has no active key yet".to_owned());
    }
    Health {
        ready: problems.is_empty(),
        node_id: ctx.id,
        role,
        leader_id,
        term,
        applied_index,
        keys: view.verifier.len(),
        problems,
    }
}

/// Prometheus text exposition of this server's Raft, keyring and allocation gauges.
async fn metrics(State(ctx): State<Arc<Ctx>>) -> Response {
    let health = health_of(&ctx);
    let (committed, last_log) = {
        let metrics = ctx.raft.metrics();
        let m = metrics.borrow_watched();
        (
            m.local_committed.map_or(0, |id| id.index),
            m.last_log_index.unwrap_or(0),
        )
    };
    let (key_states, running, stopped) = {
        let applied = ctx.state.read();
        let mut states = std::collections::BTreeMap::new();
        for meta in applied.state.keyring().metas() {
            *states.entry(meta.state.as_str()).or_insert(0u64) += 1;
        }
        let (running, stopped): (Vec<_>, Vec<_>) =
            applied.state.allocs().partition(|a| a.is_live());
        (states, running.len(), stopped.len())
    };

    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(&str, u64)]| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for (labels, value) in samples {
            out.push_str(&format!("{name}{labels} {value}\n"));
        }
    };
    let node = ctx.id;
    gauge(
        "sigil_ready",
        "1 when a leader is known and every key unwrapped.",
        &[("", u64::from(health.ready))],
    );
    gauge(
        "sigil_raft_is_leader",
        "1 on the leader.",
        &[("", u64::from(ctx.is_leader()))],
    );
    gauge(
        "sigil_raft_node_id",
        "This server's node id.",
        &[("", node)],
    );
    gauge(
        "sigil_raft_term",
        "The current Raft term.",
        &[("", health.term)],
    );
    gauge(
        "sigil_raft_last_log_index",
        "Index of the last log entry.",
        &[("", last_log)],
    );
    gauge(
        "sigil_raft_committed_index",
        "Index of the last committed entry.",
        &[("", committed)],
    );
    gauge(
        "sigil_raft_applied_index",
        "Index of the last applied entry.",
        &[("", health.applied_index)],
    );
    let keys: Vec<(String, u64)> = key_states
        .iter()
        .map(|(state, n)| (format!("{{state=\"{state}\"}}"), *n))
        .collect();
    let keys: Vec<(&str, u64)> = keys.iter().map(|(l, n)| (l.as_str(), *n)).collect();
    gauge("sigil_keyring_keys", "Root keys by state.", &keys);
    gauge(
        "sigil_allocations",
        "Allocations by status.",
        &[
            ("{status=\"running\"}", running as u64),
            ("{status=\"stopped\"}", stopped as u64),
        ],
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
