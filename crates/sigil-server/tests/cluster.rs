//! End-to-end tests against in-process clusters of three real servers on `127.0.0.1:0`: election,
//! leader-only signing, forwarding, failover, rotation, exactly-once plans, partitions,
//! restarts, bad input and bad KEKs. Each test states the guarantee it proves.

mod common;

use std::time::Duration;

use common::{kid, submit, verify_independently};
use openraft::async_runtime::watch::WatchReceiver;
use sigil_keyring::Kek;
use sigil_proto::v1::{
    ListKeysRequest, ListPeersRequest, RotateKeyRequest, SubmitPlanRequest, VerifyRequest,
};
use sigil_server::convert::plan_to_proto;
use sigil_testkit::{Cluster, DEADLINE, eventually, sample_plan};

fn plan(plan_id: &str, placements: usize) -> SubmitPlanRequest {
    plan_to_proto(&sample_plan(plan_id, placements))
}

async fn active_key(cluster: &Cluster, id: u64) -> String {
    let keys = cluster
        .keyring(id)
        .await
        .list(ListKeysRequest {})
        .await
        .expect("keys list");
    let keys = keys.into_inner().keys;
    let active: Vec<_> = keys.iter().filter(|k| k.state == "active").collect();
    assert_eq!(
        active.len(),
        1,
        "exactly one active key on node {id}: {keys:?}"
    );
    active[0].key_id.clone()
}

/// Raft elects exactly one leader, and every server agrees on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_elect_exactly_one_leader() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;

    let leaders: Vec<_> = cluster
        .running()
        .filter(|id| cluster.server(*id).ctx.is_leader())
        .collect();
    assert_eq!(
        leaders,
        vec![leader],
        "exactly one server is in the leader state"
    );
    for id in cluster.running() {
        let seen = cluster.server(id).ctx.leader().map(|l| l.id);
        assert_eq!(seen, Some(leader), "node {id} knows the leader");
    }

    let url = format!("http://{}/v1/metrics", cluster.http_addr(leader));
    let metrics = reqwest::get(&url)
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("sigil_raft_is_leader 1"),
        "the leader says so: {metrics}"
    );
    assert!(
        metrics.contains("sigil_keyring_keys{state=\"active\"} 1"),
        "one active key: {metrics}"
    );
    cluster.shutdown().await;
}

/// A plan sent to a follower is forwarded, signed by the leader's active key, and every token
/// verifies with an independent JWT library against the JWKS of each of the three servers,
/// carrying exactly the claims of the design's table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_submitted_to_a_follower_is_signed_by_the_leader_and_verifies_everywhere() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let follower = cluster.follower().await;
    let leader_key = cluster
        .server(leader)
        .ctx
        .keys
        .view()
        .active
        .expect("leader signs")
        .key_id();

    let response = submit(&cluster, follower, &plan("plan-forwarded", 2)).await;

    assert_eq!(
        response.allocations.len(),
        2,
        "two placements, two allocations"
    );
    assert!(!response.replayed, "a first submission is not a replay");
    let alloc = &response.allocations[0];
    assert_eq!(alloc.identities.len(), 4, "nginx x2, sidecar, service http");
    for id in cluster.running() {
        let jwks = cluster.jwks(id).await;
        for identity in response.allocations.iter().flat_map(|a| &a.identities) {
            assert_eq!(
                kid(&identity.jwt),
                leader_key.to_string(),
                "signed by the leader's key"
            );
            verify_independently(&identity.jwt, &jwks);
        }
    }

    let nginx = alloc
        .identities
        .iter()
        .find(|i| i.workload == "nginx" && i.identity == "default")
        .expect("nginx has a default identity");
    let claims = verify_independently(&nginx.jwt, &cluster.jwks(follower).await);
    assert_eq!(
        claims["sub"], "global:default:web:frontend:nginx:default",
        "sub"
    );
    assert_eq!(claims["aud"], "nomadproject.io", "default audience");
    assert_eq!(claims["nomad_namespace"], "default");
    assert_eq!(claims["nomad_job_id"], "web");
    assert_eq!(claims["nomad_allocation_id"], alloc.id.as_str());
    assert_eq!(claims["nomad_task"], "nginx");
    assert_eq!(claims["vault_role"], "web-role", "the task's vault role");
    assert_eq!(claims["iat"], claims["nbf"], "nbf is the signing time");
    assert!(
        claims.get("exp").is_none(),
        "the default identity never expires: {claims}"
    );
    assert!(
        claims.get("nomad_service").is_none(),
        "tasks carry no nomad_service"
    );
    assert!(
        uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok(),
        "jti is a UUID"
    );

    let vault = alloc
        .identities
        .iter()
        .find(|i| i.identity == "vault_default")
        .expect("vault id");
    let claims = verify_independently(&vault.jwt, &cluster.jwks(leader).await);
    assert_eq!(claims["aud"], "vault.io", "the block's audience");
    assert_eq!(
        claims["exp"].as_u64(),
        claims["iat"].as_u64().map(|iat| iat + 3600),
        "exp is iat + ttl"
    );
    let service = alloc
        .identities
        .iter()
        .find(|i| i.workload_type == "service")
        .expect("service");
    let claims = verify_independently(&service.jwt, &cluster.jwks(leader).await);
    assert_eq!(
        claims["nomad_service"], "http",
        "service identities name the service"
    );
    assert!(
        claims.get("nomad_task").is_none(),
        "service identities carry no nomad_task"
    );

    // Sigil's own verifier agrees on every server, followers included.
    for id in cluster.running() {
        let verified = cluster
            .identities(id)
            .await
            .verify(VerifyRequest {
                token: nginx.jwt.clone(),
            })
            .await
            .unwrap_or_else(|s| panic!("node {id} verifies the token: {s:?}"))
            .into_inner();
        assert_eq!(
            verified.allocation_id, alloc.id,
            "node {id} resolves the allocation"
        );
    }
    cluster.shutdown().await;
}

/// When the leader dies, a new leader signs the next plan with the same active key (it already
/// holds every wrapped key and the KEK), and tokens issued before the failover still verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_leader_dies_a_new_leader_signs_with_the_same_key() {
    let mut cluster = Cluster::start(3).await;
    let old_leader = cluster.leader().await;
    let before = submit(&cluster, old_leader, &plan("before-failover", 1)).await;
    let key_before = kid(&before.allocations[0].identities[0].jwt);

    cluster.stop(old_leader).await;
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, old_leader, "a surviving server leads");
    let after = submit(&cluster, new_leader, &plan("after-failover", 1)).await;

    assert_eq!(
        kid(&after.allocations[0].identities[0].jwt),
        key_before,
        "same active key"
    );
    for id in cluster.running() {
        let jwks = cluster.jwks(id).await;
        for token in [&before, &after]
            .iter()
            .flat_map(|r| &r.allocations[0].identities)
        {
            verify_independently(&token.jwt, &jwks);
        }
    }
    cluster.shutdown().await;
}

/// `rotate now` makes a new key active in one entry: every server publishes it (and still the
/// old one, which keeps verifying), and the next plan is signed with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_now_is_published_everywhere_and_signs_the_next_plan() {
    let cluster = Cluster::start(3).await;
    let follower = cluster.follower().await;
    let old_key = active_key(&cluster, follower).await;
    let before = submit(&cluster, follower, &plan("before-rotation", 1)).await;

    let rotated = cluster
        .keyring(follower)
        .await
        .rotate(RotateKeyRequest {
            now: true,
            ..Default::default()
        })
        .await
        .expect("rotation through a follower")
        .into_inner();
    let new_key = rotated.key.expect("the new key").key_id;
    assert_ne!(new_key, old_key, "a new key");

    for id in cluster.running() {
        eventually(
            &format!("node {id} to publish the new key"),
            DEADLINE,
            || async {
                let jwks = cluster.jwks(id).await;
                let kids: Vec<_> = jwks["keys"]
                    .as_array()?
                    .iter()
                    .filter_map(|k| k["kid"].as_str())
                    .collect();
                (kids.contains(&new_key.as_str()) && kids.contains(&old_key.as_str())).then_some(())
            },
        )
        .await;
        assert_eq!(
            active_key(&cluster, id).await,
            new_key,
            "node {id} has the new key active"
        );
    }
    let after = submit(&cluster, follower, &plan("after-rotation", 1)).await;
    assert_eq!(
        kid(&after.allocations[0].identities[0].jwt),
        new_key,
        "signed with the new key"
    );
    let jwks = cluster.jwks(follower).await;
    verify_independently(&before.allocations[0].identities[0].jwt, &jwks);
    cluster.shutdown().await;
}

/// A prepublished key appears in every JWKS at once, does not sign until due, and the leader
/// activates it when its publish time comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepublished_key_is_published_first_and_activated_when_due() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let old_key = active_key(&cluster, leader).await;

    let rotated = cluster
        .keyring(leader)
        .await
        .rotate(RotateKeyRequest {
            prepublish_seconds: 2,
            ..Default::default()
        })
        .await
        .expect("prepublish")
        .into_inner();
    let key = rotated.key.expect("the new key");
    assert_eq!(key.state, "prepublished", "not active yet");
    let early = submit(&cluster, leader, &plan("during-prepublish", 1)).await;
    if kid(&early.allocations[0].identities[0].jwt) != old_key {
        // The plan raced the activation; the key must then at least be active now.
        assert_eq!(
            active_key(&cluster, leader).await,
            key.key_id,
            "only an active key signs"
        );
    }
    for id in cluster.running() {
        let jwks = cluster.jwks(id).await.to_string();
        assert!(
            jwks.contains(&key.key_id),
            "node {id} publishes the prepublished key"
        );
    }

    eventually(
        "the prepublished key to become active",
        DEADLINE,
        || async { (active_key(&cluster, leader).await == key.key_id).then_some(()) },
    )
    .await;
    let later = submit(&cluster, leader, &plan("after-activation", 1)).await;
    assert_eq!(
        kid(&later.allocations[0].identities[0].jwt),
        key.key_id,
        "the new key signs"
    );
    cluster.shutdown().await;
}

/// A plan retried with the same `plan_id` after a failover returns the first allocations and
/// tokens instead of placing twice (guarantee 6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_plan_id_returns_the_first_allocations_after_failover() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let first = submit(&cluster, leader, &plan("exactly-once", 2)).await;

    cluster.stop(leader).await;
    let survivor = cluster.follower().await;
    let retry = submit(&cluster, survivor, &plan("exactly-once", 2)).await;

    assert!(
        retry.replayed,
        "the retry is answered from the stored result"
    );
    assert_eq!(retry.log_index, first.log_index, "the same entry");
    let ids = |r: &sigil_proto::v1::SubmitPlanResponse| {
        let mut ids: Vec<_> = r.allocations.iter().map(|a| a.id.clone()).collect();
        ids.sort();
        ids
    };
    assert_eq!(
        ids(&retry),
        ids(&first),
        "the same allocations, not new ones"
    );
    let count = cluster
        .server(survivor)
        .state()
        .read()
        .state
        .allocs()
        .count();
    assert_eq!(count, 2, "nothing was placed twice");
    cluster.shutdown().await;
}

/// A server cut off from the majority cannot get anything signed: it answers `Unavailable`
/// promptly, and no token leaves it (guarantee 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_minority_server_cannot_sign_and_answers_unavailable() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    // Isolate the leader itself: the hardest case, since it still believes it leads.
    cluster.isolate(leader);

    let mut client = cluster.plans(leader).await;
    let mut request = tonic::Request::new(plan("isolated", 1));
    request.set_timeout(Duration::from_secs(3));
    let status = client
        .submit(request)
        .await
        .expect_err("an isolated server cannot sign");
    assert_eq!(
        status.code(),
        tonic::Code::Unavailable,
        "Unavailable, not a token: {status:?}"
    );

    let majority = cluster
        .running()
        .find(|id| *id != leader)
        .expect("a majority server");
    let elsewhere = submit(&cluster, majority, &plan("majority", 1)).await;
    assert_eq!(elsewhere.allocations.len(), 1, "the majority keeps signing");
    let placed = cluster
        .server(majority)
        .state()
        .read()
        .state
        .plan_outcome(&sigil_types::PlanId("isolated".into()));
    assert!(placed.is_none(), "the isolated plan never committed");

    cluster.heal();
    cluster.shutdown().await;
}

/// Stopping and restarting all three servers keeps keys, allocations and tokens: the log and
/// state are on disk and replay to the same state (guarantee 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_every_server_keeps_keys_allocations_and_tokens() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let response = submit(&cluster, leader, &plan("durable", 2)).await;
    let key = active_key(&cluster, leader).await;
    let jwks_before = cluster.jwks(leader).await;

    for id in 1..=3 {
        cluster.stop(id).await;
    }
    for id in 1..=3 {
        cluster.restart(id).await;
    }
    cluster.wait_ready().await;

    for id in cluster.running() {
        assert_eq!(
            active_key(&cluster, id).await,
            key,
            "node {id} kept the active key"
        );
        assert_eq!(
            cluster.jwks(id).await,
            jwks_before,
            "node {id} serves the same JWKS"
        );
        let state = cluster.server(id).state().read();
        for alloc in &response.allocations {
            let id_ = alloc.id.parse().expect("alloc id");
            let stored = state.state.alloc(&id_).expect("the allocation survived");
            let tokens: Vec<_> = stored.identities.iter().map(|i| i.jwt.clone()).collect();
            let sent: Vec<_> = alloc.identities.iter().map(|i| i.jwt.clone()).collect();
            assert_eq!(tokens, sent, "node {id} kept the very tokens it returned");
        }
    }
    let leader = cluster.leader().await;
    let replay = submit(&cluster, leader, &plan("durable", 2)).await;
    assert!(replay.replayed, "the plan id is remembered across restarts");
    cluster.shutdown().await;
}

/// Malformed plans are refused with `InvalidArgument` naming the field, and nothing reaches
/// Raft (guarantee 7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_plans_are_rejected_naming_the_field_and_change_nothing() {
    let cluster = Cluster::start(3).await;
    let follower = cluster.follower().await;
    let applied_before = cluster
        .server(follower)
        .raft()
        .metrics()
        .borrow_watched()
        .last_applied;

    let mut cases: Vec<(&str, SubmitPlanRequest)> = Vec::new();
    let mut p = plan("bad-group", 1);
    p.place[0].group = "nope".into();
    cases.push(("place[0].group", p));
    let mut p = plan("bad-ttl", 1);
    p.job.as_mut().unwrap().groups[0].tasks[1]
        .identities
        .push(sigil_proto::v1::IdentityBlock {
            ttl_seconds: 60,
            ..Default::default()
        });
    cases.push(("job.groups[0].tasks[1].identities[0].ttl_seconds", p));
    let mut p = plan("bad-stop", 1);
    p.stop.push("not-a-uuid".into());
    cases.push(("stop[0]", p));
    let mut p = plan("", 1);
    p.plan_id = String::new();
    cases.push(("plan_id", p));
    let mut p = plan("no-job", 1);
    p.job = None;
    cases.push(("job", p));

    for (field, request) in cases {
        let status = cluster
            .plans(follower)
            .await
            .submit(request)
            .await
            .expect_err(field);
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{field}: {status:?}"
        );
        assert!(
            status.message().starts_with(field),
            "the error names {field}: {status:?}"
        );
    }
    let count = cluster
        .server(follower)
        .state()
        .read()
        .state
        .allocs()
        .count();
    assert_eq!(count, 0, "no allocation was created");
    let applied_after = cluster
        .server(follower)
        .raft()
        .metrics()
        .borrow_watched()
        .last_applied;
    assert_eq!(
        applied_after, applied_before,
        "nothing was written to the log"
    );
    cluster.shutdown().await;
}

/// A server whose KEK cannot unwrap the keyring says so on its health endpoint, serves no JWKS
/// and keeps running, while the others stay ready (guarantee 5 and the readiness contract).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_a_wrong_kek_reports_not_ready() {
    let cluster = Cluster::start_with(3, |config, kek| {
        if config.node_id == 3 {
            *kek = Some(Kek::generate());
        }
    })
    .await;
    cluster.leader().await;

    let url = format!("http://{}/v1/health", cluster.http_addr(3));
    let health: serde_json::Value =
        eventually("node 3 to report the wrong KEK", DEADLINE, || async {
            let response = reqwest::get(&url).await.ok()?;
            let status = response.status();
            let body: serde_json::Value = response.json().await.ok()?;
            let named = body["problems"].to_string().contains("KEK");
            (status == 503 && named).then_some(body)
        })
        .await;
    assert_eq!(health["ready"], false, "not ready: {health}");
    let jwks = reqwest::get(format!(
        "http://{}/.well-known/jwks.json",
        cluster.http_addr(3)
    ))
    .await
    .expect("the HTTP server still answers");
    assert_eq!(jwks.status(), 503, "no partial JWKS is served");
    for id in [1, 2] {
        let ok = reqwest::get(format!("http://{}/v1/health", cluster.http_addr(id))).await;
        assert_eq!(
            ok.expect("health").status(),
            200,
            "node {id} with the right KEK is ready"
        );
    }
    cluster.shutdown().await;
}

/// A stopped allocation's tokens stop verifying on every server (guarantee 3's exception).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_an_allocation_revokes_its_tokens() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let placed = submit(&cluster, leader, &plan("place", 1)).await;
    let alloc = placed.allocations[0].clone();
    let token = alloc.identities[0].jwt.clone();

    let mut stop = plan("stop", 0);
    stop.stop.push(alloc.id.clone());
    let stopped = submit(&cluster, leader, &stop).await;
    assert_eq!(
        stopped.stopped,
        vec![alloc.id.clone()],
        "the allocation is stopped"
    );

    for id in cluster.running() {
        let status = eventually(
            &format!("node {id} to refuse the token"),
            DEADLINE,
            || async {
                cluster
                    .identities(id)
                    .await
                    .verify(VerifyRequest {
                        token: token.clone(),
                    })
                    .await
                    .err()
            },
        )
        .await;
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "node {id}: {status:?}"
        );
        assert!(
            status.message().contains("stopped"),
            "node {id} says why: {status:?}"
        );
    }
    cluster.shutdown().await;
}

/// With a small snapshot threshold the log is purged behind snapshots, so disk stays bounded;
/// a server whose disk was replaced catches up from the leader's snapshot (sent in chunks over
/// the Raft transport) and ends with the same keys and allocations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_a_new_disk_catches_up_from_a_snapshot() {
    let mut cluster = Cluster::start_with(3, |config, _| {
        config.raft.snapshot_after_entries = 10;
    })
    .await;
    cluster.wait_ready().await;
    let leader = cluster.leader().await;
    for i in 0..30 {
        submit(&cluster, leader, &plan(&format!("snap-{i}"), 1)).await;
    }
    eventually(
        "every server to purge its log behind a snapshot",
        DEADLINE,
        || async {
            let purged = cluster.running().all(|id| {
                let metrics = cluster.server(id).raft().metrics();
                metrics.borrow_watched().purged.is_some_and(|p| p.index > 0)
            });
            purged.then_some(())
        },
    )
    .await;

    let wiped = cluster
        .running()
        .find(|id| *id != leader)
        .expect("a follower");
    cluster.stop_and_wipe(wiped).await;
    cluster.restart(wiped).await;

    let expected = cluster.server(leader).state().read().state.allocs().count();
    assert_eq!(expected, 30, "thirty plans, one allocation each");
    eventually(
        "the wiped server to catch up from a snapshot",
        DEADLINE,
        || async {
            let count = cluster.server(wiped).state().read().state.allocs().count();
            (count == expected).then_some(())
        },
    )
    .await;
    let snapshot = cluster
        .server(wiped)
        .raft()
        .metrics()
        .borrow_watched()
        .snapshot;
    assert!(snapshot.is_some(), "the wiped server installed a snapshot");
    cluster.wait_ready().await;
    assert_eq!(
        cluster.jwks(wiped).await,
        cluster.jwks(leader).await,
        "same JWKS as the leader"
    );
    cluster.shutdown().await;
}

/// `transfer-leader` hands leadership to the chosen voter, which then signs; `remove-peer`
/// shrinks the membership and the remaining servers keep signing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_on_request_and_a_removed_peer_leaves_the_membership() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let target = cluster
        .running()
        .find(|id| *id != leader)
        .expect("a follower");

    let request = sigil_proto::v1::TransferLeaderRequest { to_node_id: target };
    let moved = cluster
        .operator(leader)
        .await
        .transfer_leader(request)
        .await
        .expect("transfer");
    assert_eq!(
        moved.into_inner().new_leader_id,
        target,
        "the chosen voter leads"
    );
    assert_eq!(cluster.leader().await, target, "every server agrees");
    let signed = submit(&cluster, target, &plan("after-transfer", 1)).await;
    assert_eq!(signed.allocations.len(), 1, "the new leader signs");

    let removed = cluster
        .running()
        .find(|id| *id != target)
        .expect("another server");
    let request = sigil_proto::v1::RemovePeerRequest { node_id: removed };
    let membership = cluster
        .operator(target)
        .await
        .remove_peer(request)
        .await
        .expect("remove");
    let voters: Vec<_> = membership
        .into_inner()
        .peers
        .iter()
        .filter(|p| p.voter)
        .map(|p| p.node_id)
        .collect();
    assert!(
        !voters.contains(&removed),
        "node {removed} is no longer a voter: {voters:?}"
    );
    assert_eq!(voters.len(), 2, "two voters remain");

    let peers = cluster
        .operator(target)
        .await
        .list_peers(ListPeersRequest {})
        .await;
    let peers = peers.expect("list peers").into_inner();
    assert!(
        peers.peers.iter().any(|p| p.leader && p.node_id == target),
        "leader listed"
    );
    let after = submit(&cluster, target, &plan("after-removal", 1)).await;
    assert_eq!(after.allocations.len(), 1, "two voters still commit");
    cluster.shutdown().await;
}

/// Renewing a named identity through a follower is signed by the leader, committed before it is
/// returned, replaces the stored token, and verifies everywhere; an unknown identity is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_identity_is_signed_by_the_leader_and_replaces_the_stored_token() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let follower = cluster.follower().await;
    let placed = submit(&cluster, follower, &plan("renew", 1)).await;
    let alloc = &placed.allocations[0];

    let request = sigil_proto::v1::SignRequest {
        allocation_id: alloc.id.clone(),
        workload: "nginx".into(),
        identity: "vault_default".into(),
    };
    let renewed = cluster
        .identities(follower)
        .await
        .sign(request)
        .await
        .expect("renewal");
    let renewed = renewed.into_inner();
    let token = renewed.identity.expect("a token").jwt;
    assert!(
        renewed.log_index > placed.log_index,
        "the renewal committed after the plan"
    );
    let leader_key = cluster
        .server(leader)
        .ctx
        .keys
        .view()
        .active
        .expect("signer")
        .key_id();
    assert_eq!(
        kid(&token),
        leader_key.to_string(),
        "signed with the leader's active key"
    );

    let claims = verify_independently(&token, &cluster.jwks(follower).await);
    assert_eq!(
        claims["sub"], "global:default:web:frontend:nginx:vault_default",
        "same subject"
    );
    assert_eq!(claims["aud"], "vault.io", "same audience");
    eventually(
        "every server to store the renewed token",
        DEADLINE,
        || async {
            let alloc_id = alloc.id.parse().expect("an alloc id");
            let stored = cluster.running().all(|id| {
                let state = cluster.server(id).state().read();
                let alloc = state.state.alloc(&alloc_id).expect("the allocation");
                alloc.identities.iter().any(|i| i.jwt == token)
            });
            stored.then_some(())
        },
    )
    .await;

    let unknown = sigil_proto::v1::SignRequest {
        allocation_id: alloc.id.clone(),
        workload: "nginx".into(),
        identity: "nope".into(),
    };
    let status = cluster
        .identities(follower)
        .await
        .sign(unknown)
        .await
        .expect_err("unknown");
    assert_eq!(
        status.code(),
        tonic::Code::NotFound,
        "unknown identity: {status:?}"
    );
    cluster.shutdown().await;
}

/// A rotation retried with the same request id, even through another server, answers the key
/// the first attempt created: the keyring gains one key, not two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_rotation_creates_one_key() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let follower = cluster.follower().await;
    let request = RotateKeyRequest {
        now: true,
        request_id: "rotate-once".into(),
        ..Default::default()
    };

    let first = cluster
        .keyring(follower)
        .await
        .rotate(request.clone())
        .await
        .expect("rotate");
    let retry = cluster
        .keyring(leader)
        .await
        .rotate(request)
        .await
        .expect("retry");

    let first = first.into_inner().key.expect("a key").key_id;
    assert_eq!(
        retry.into_inner().key.expect("a key").key_id,
        first,
        "the same key answers"
    );
    let keys = cluster
        .keyring(leader)
        .await
        .list(ListKeysRequest {})
        .await
        .expect("list");
    assert_eq!(
        keys.into_inner().keys.len(),
        2,
        "the first key and one rotation, not two"
    );
    assert_eq!(
        active_key(&cluster, leader).await,
        first,
        "the rotated key is active"
    );

    let bad = RotateKeyRequest {
        now: true,
        request_id: "not valid!".into(),
        ..Default::default()
    };
    let status = cluster
        .keyring(leader)
        .await
        .rotate(bad)
        .await
        .expect_err("bad request id");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().starts_with("request_id"),
        "names the field: {status:?}"
    );
    cluster.shutdown().await;
}
