//! End-to-end ACL tests against in-process clusters of three real servers on `127.0.0.1:0`
//! with ACLs enabled: bootstrap once, policies and tokens through Raft (replicated, persisted,
//! kept across failover), enforcement that refuses before any write, and workload identities
//! resolved to exactly the policies associated with their allocation. Each test states what it
//! proves.

use sigil_proto::v1::authorize_request::Check;
use sigil_proto::v1::{
    AclPolicy, AuthorizeRequest, BootstrapRequest, CreateTokenRequest, DeleteTokenRequest,
    GetPolicyRequest, JobAcl, ListKeysRequest, ListPeersRequest, SignRequest, SubmitPlanRequest,
    SubmitPlanResponse, UpsertPolicyRequest, VariablesCheck, VerifyRequest, WhoAmIRequest,
};
use sigil_server::convert::plan_to_proto;
use sigil_testkit::{Cluster, DEADLINE, authorized, eventually, sample_plan};
use sigil_types::{NodeId, SecretHash};
use tonic::Code;

/// Bootstraps through server `id`, retrying while no leader is reachable; returns the secret.
async fn bootstrap(cluster: &Cluster, id: NodeId) -> String {
    eventually("the ACL bootstrap to commit", DEADLINE, || async {
        let mut client = cluster.acl(id).await;
        match client.bootstrap(BootstrapRequest {}).await {
            Ok(response) => Some(response.into_inner().secret_id),
            Err(status) if status.code() == Code::Unavailable => None,
            Err(status) => panic!("bootstrap failed: {status:?}"),
        }
    })
    .await
}

/// A policy with rules and an optional job association (`[namespace, job, group, task]`,
/// empty strings for unset fields).
fn policy(name: &str, rules: &str, job_acl: Option<[&str; 4]>) -> AclPolicy {
    AclPolicy {
        name: name.into(),
        description: String::new(),
        rules: rules.into(),
        job_acl: job_acl.map(|[namespace, job, group, task]| JobAcl {
            namespace: namespace.into(),
            job: job.into(),
            group: group.into(),
            task: task.into(),
        }),
    }
}

async fn upsert_policy(cluster: &Cluster, id: NodeId, token: &str, policy: AclPolicy) -> u64 {
    let name = policy.name.clone();
    let request = authorized(
        UpsertPolicyRequest {
            policy: Some(policy),
        },
        token,
    );
    let response = cluster.acl(id).await.upsert_policy(request).await;
    let response = response.unwrap_or_else(|s| panic!("policy {name} is written: {s:?}"));
    response.into_inner().log_index
}

/// Creates a client token with `policies` through server `id`; returns its secret.
async fn client_token(cluster: &Cluster, id: NodeId, token: &str, policies: &[&str]) -> String {
    let request = CreateTokenRequest {
        name: format!("client with {policies:?}"),
        r#type: "client".into(),
        policies: policies.iter().map(|p| p.to_string()).collect(),
    };
    let response = cluster
        .acl(id)
        .await
        .create_token(authorized(request, token))
        .await
        .unwrap_or_else(|s| panic!("a client token with {policies:?} is created: {s:?}"));
    response.into_inner().secret_id
}

async fn submit(
    cluster: &Cluster,
    id: NodeId,
    token: Option<&str>,
    plan: &SubmitPlanRequest,
) -> Result<SubmitPlanResponse, tonic::Status> {
    let request = match token {
        Some(token) => authorized(plan.clone(), token),
        None => tonic::Request::new(plan.clone()),
    };
    let response = cluster.plans(id).await.submit(request).await;
    response.map(|r| r.into_inner())
}

async fn authorize(cluster: &Cluster, id: NodeId, token: &str, check: Check) -> bool {
    let request = AuthorizeRequest {
        namespace: "default".into(),
        check: Some(check),
    };
    let response = cluster
        .acl(id)
        .await
        .authorize(authorized(request, token))
        .await
        .unwrap_or_else(|s| panic!("authorize answers: {s:?}"));
    response.into_inner().allowed
}

fn capability(name: &str) -> Check {
    Check::NamespaceCapability(name.into())
}

fn applied_index(cluster: &Cluster, id: NodeId) -> u64 {
    // The state's own index, not Raft's metrics, which are published a moment after an apply.
    let applied = cluster.server(id).state().read();
    applied.last_applied.map_or(0, |l| l.index)
}

/// Waits until every server has applied the same index, and returns it.
async fn settled_index(cluster: &Cluster) -> u64 {
    eventually("every server to apply the same index", DEADLINE, || async {
        let indexes: Vec<_> = (1..=3).map(|id| applied_index(cluster, id)).collect();
        indexes
            .iter()
            .all(|i| *i == indexes[0])
            .then_some(indexes[0])
    })
    .await
}

fn alloc_count(cluster: &Cluster, id: NodeId) -> usize {
    cluster.server(id).state().read().state.allocs().count()
}

/// Waits until server `id` has applied the policy and the token whose secret is given.
async fn wait_for_acl_state(cluster: &Cluster, id: NodeId, policy: &str, secret: &str) {
    let hash = SecretHash::of(secret);
    eventually(
        &format!("policy {policy} and the token to reach node {id}"),
        DEADLINE,
        || async {
            let applied = cluster.server(id).state().read();
            let state = &applied.state;
            (state.acl_policy(policy).is_some() && state.acl_token_by_hash(&hash).is_some())
                .then_some(())
        },
    )
    .await;
}

/// Policies and tokens written through followers reach every server's applied state (so any
/// server authenticates the token), stay in a stopped server's storage (checked right after it
/// restarts, before it could catch up), keep working after the leader is lost, and the new
/// leader refuses a second bootstrap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn policies_and_tokens_replicate_and_survive_restart_and_failover() {
    let mut cluster = Cluster::start_with_acls(3).await;
    let follower = cluster.follower().await;

    // Phase 1: bootstrap, a policy and a client token, all through a follower.
    let management = bootstrap(&cluster, follower).await;
    let rules = r#"namespace "default" { policy = "write" }"#;
    upsert_policy(
        &cluster,
        follower,
        &management,
        policy("deploy", rules, None),
    )
    .await;
    let deployer = client_token(&cluster, follower, &management, &["deploy"]).await;
    for id in 1..=3 {
        wait_for_acl_state(&cluster, id, "deploy", &deployer).await;
        let state = cluster.server(id).state().read();
        let tokens: Vec<_> = state.state.acl_tokens().cloned().collect();
        let stored = serde_json::to_string(&tokens).expect("tokens serialize");
        assert!(
            !stored.contains(&deployer) && !stored.contains(&management),
            "node {id} stores hashes, never secrets"
        );
    }
    for id in 1..=3 {
        let whoami = cluster
            .acl(id)
            .await
            .who_am_i(authorized(WhoAmIRequest {}, &deployer))
            .await
            .expect("every server authenticates the client token")
            .into_inner();
        assert_eq!(whoami.r#type, "client", "node {id} sees a client token");
        assert_eq!(
            whoami.policies,
            vec!["deploy"],
            "node {id} resolves its policy"
        );
    }

    // Phase 2: stop the leader; the rest elect a new one and keep serving ACLs.
    let old_leader = cluster.leader().await;
    cluster.stop(old_leader).await;
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, old_leader, "a new leader is elected");
    let plan = plan_to_proto(&sample_plan("acl-failover", 1));
    let placed = eventually(
        "a plan with the client token after failover",
        DEADLINE,
        || {
            let plan = plan.clone();
            let cluster = &cluster;
            let deployer = deployer.clone();
            async move {
                match submit(cluster, new_leader, Some(&deployer), &plan).await {
                    Ok(response) => Some(response),
                    Err(s) if matches!(s.code(), Code::Unavailable | Code::Aborted) => None,
                    Err(s) => panic!("the client token still submits: {s:?}"),
                }
            }
        },
    )
    .await;
    assert_eq!(
        placed.allocations.len(),
        1,
        "the plan placed its allocation"
    );
    let second = cluster
        .acl(new_leader)
        .await
        .bootstrap(BootstrapRequest {})
        .await;
    let code = second.expect_err("a second bootstrap is refused").code();
    assert_eq!(
        code,
        Code::FailedPrecondition,
        "a second bootstrap fails its precondition"
    );
    let later = client_token(&cluster, new_leader, &management, &["deploy"]).await;

    // Phase 3: the old leader restarts from its own storage, then catches up.
    cluster.restart(old_leader).await;
    {
        let applied = cluster.server(old_leader).state().read();
        let state = &applied.state;
        assert!(
            state.acl_policy("deploy").is_some(),
            "the restarted server loaded the policy from storage"
        );
        let hash = SecretHash::of(&deployer);
        assert!(
            state.acl_token_by_hash(&hash).is_some(),
            "the restarted server loaded the token from storage"
        );
    }
    wait_for_acl_state(&cluster, old_leader, "deploy", &later).await;
    let got = cluster
        .acl(old_leader)
        .await
        .get_policy(authorized(
            GetPolicyRequest {
                name: "deploy".into(),
            },
            &management,
        ))
        .await
        .expect("the restarted server serves the policy")
        .into_inner();
    assert_eq!(got.name, "deploy", "the policy read back has its name");

    // Phase 4: a deleted token stops authenticating on every server.
    let accessor = cluster
        .acl(old_leader)
        .await
        .who_am_i(authorized(WhoAmIRequest {}, &later))
        .await
        .expect("the later token authenticates")
        .into_inner()
        .token
        .expect("a token caller")
        .accessor_id;
    let delete = DeleteTokenRequest {
        accessor_id: accessor,
    };
    cluster
        .acl(old_leader)
        .await
        .delete_token(authorized(delete, &management))
        .await
        .expect("the management token deletes a token");
    for id in cluster.running().collect::<Vec<_>>() {
        eventually(
            &format!("the deleted token to be refused by node {id}"),
            DEADLINE,
            || async {
                let who = cluster.acl(id).await;
                let answer = who
                    .clone()
                    .who_am_i(authorized(WhoAmIRequest {}, &later))
                    .await;
                let refused = answer.is_err_and(|s| s.code() == Code::Unauthenticated);
                refused.then_some(())
            },
        )
        .await;
    }
    cluster.shutdown().await;
}

/// Missing, malformed, unknown and under-privileged tokens are refused with distinct codes,
/// and none of the refused submissions reaches Raft: the applied index and the allocation count
/// stay where they were on every server. The same checks guard the keyring and operator APIs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_without_a_token_or_rights_are_refused_without_any_write() {
    let cluster = Cluster::start_with_acls(3).await;
    let follower = cluster.follower().await;
    let management = bootstrap(&cluster, follower).await;
    let read_rules = r#"namespace "default" { policy = "read" }"#;
    let other_rules = r#"namespace "other" { policy = "write" }"#;
    upsert_policy(
        &cluster,
        follower,
        &management,
        policy("reader", read_rules, None),
    )
    .await;
    upsert_policy(
        &cluster,
        follower,
        &management,
        policy("other", other_rules, None),
    )
    .await;
    let reader = client_token(&cluster, follower, &management, &["reader"]).await;
    let other = client_token(&cluster, follower, &management, &["other"]).await;
    for id in 1..=3 {
        wait_for_acl_state(&cluster, id, "other", &other).await;
    }

    // Phase 1: every refused submit, through a follower and through the leader.
    let leader = cluster.leader().await;
    let before = settled_index(&cluster).await;
    let plan = plan_to_proto(&sample_plan("refused", 1));
    let unknown = uuid::Uuid::new_v4().to_string();
    let cases = [
        (None, Code::Unauthenticated, "no token"),
        (
            Some("not-a-token"),
            Code::Unauthenticated,
            "a malformed token",
        ),
        (
            Some(unknown.as_str()),
            Code::Unauthenticated,
            "an unknown secret",
        ),
        (Some("e30.e30.c2ln"), Code::Unauthenticated, "a forged JWT"),
        (
            Some(reader.as_str()),
            Code::PermissionDenied,
            "read-only rights",
        ),
        (
            Some(other.as_str()),
            Code::PermissionDenied,
            "rights in another namespace",
        ),
    ];
    for id in [follower, leader] {
        for (token, code, what) in &cases {
            let status = submit(&cluster, id, *token, &plan).await;
            let status = status.expect_err("the submit is refused");
            assert_eq!(status.code(), *code, "{what} via node {id}: {status:?}");
        }
    }
    let after = settled_index(&cluster).await;
    assert_eq!(after, before, "no refused submit reached the log");
    for id in 1..=3 {
        assert_eq!(alloc_count(&cluster, id), 0, "node {id} placed nothing");
    }

    // Phase 2: the keyring and operator APIs refuse the same way.
    let keys = cluster
        .keyring(follower)
        .await
        .list(ListKeysRequest {})
        .await;
    let code = keys.expect_err("listing keys needs a token").code();
    assert_eq!(code, Code::Unauthenticated, "keyring list without a token");
    let keys = cluster
        .keyring(follower)
        .await
        .list(authorized(ListKeysRequest {}, &reader))
        .await;
    let code = keys.expect_err("listing keys needs keyring-read").code();
    assert_eq!(
        code,
        Code::PermissionDenied,
        "keyring list without keyring-read"
    );
    let peers = cluster
        .operator(follower)
        .await
        .list_peers(authorized(ListPeersRequest {}, &reader))
        .await;
    let code = peers.expect_err("listing peers needs raft-read").code();
    assert_eq!(
        code,
        Code::PermissionDenied,
        "raft list-peers without raft-read"
    );
    let policy_write = cluster
        .acl(follower)
        .await
        .upsert_policy(authorized(
            UpsertPolicyRequest {
                policy: Some(policy("sneaky", read_rules, None)),
            },
            &reader,
        ))
        .await;
    let code = policy_write.expect_err("ACL writes need management").code();
    assert_eq!(
        code,
        Code::PermissionDenied,
        "a client token cannot write policies"
    );

    // Phase 3: the right token is accepted, so the refusals above were about the token.
    let ok = submit(&cluster, follower, Some(&management), &plan).await;
    let ok = ok.expect("the management token submits");
    assert_eq!(
        ok.allocations.len(),
        1,
        "the accepted plan placed its allocation"
    );
    cluster.shutdown().await;
}

/// The JWT of one allocation of job `web` resolves to exactly the policies associated with its
/// namespace, its job, its group and (for the task) its task: the task-scoped policy reaches
/// the task it names and neither its sibling task nor the group's service, and the policy of
/// job `api` reaches nobody in `web`. A dispatched child of `web` gets `web`'s policies.
/// A workload may renew its own identity and not a
/// sibling's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_workload_identity_gets_exactly_the_grants_of_its_associations() {
    let cluster = Cluster::start_with_acls(3).await;
    let follower = cluster.follower().await;
    let management = bootstrap(&cluster, follower).await;
    let grant = |cap: &str| format!(r#"namespace "default" {{ capabilities = ["{cap}"] }}"#);
    let policies = [
        ("ns-wide", grant("list-jobs"), ["default", "", "", ""]),
        ("web-job", grant("read-logs"), ["default", "web", "", ""]),
        (
            "web-group",
            grant("read-fs"),
            ["default", "web", "frontend", ""],
        ),
        (
            "nginx-task",
            grant("alloc-exec"),
            ["default", "web", "frontend", "nginx"],
        ),
        ("api-job", grant("submit-job"), ["default", "api", "", ""]),
        ("other-ns", grant("scale-job"), ["other", "", "", ""]),
    ];
    for (name, rules, job_acl) in &policies {
        upsert_policy(
            &cluster,
            follower,
            &management,
            policy(name, rules, Some(*job_acl)),
        )
        .await;
    }
    let placed = submit(
        &cluster,
        follower,
        Some(&management),
        &plan_to_proto(&sample_plan("workloads", 1)),
    )
    .await
    .expect("the plan is placed");
    let alloc = &placed.allocations[0];
    let jwt_of = |workload: &str, identity: &str| {
        alloc
            .identities
            .iter()
            .find(|i| i.workload == workload && i.identity == identity)
            .unwrap_or_else(|| panic!("{workload}/{identity} was signed"))
            .jwt
            .clone()
    };
    let nginx = jwt_of("nginx", "default");
    let sidecar = jwt_of("sidecar", "default");
    let service = jwt_of("http", "default");
    // A dispatched child of `web`: associations match its parent job.
    let mut child = sample_plan("child", 1);
    child.job.id = "web-dispatch-1".into();
    child.job.parent_id = Some("web".into());
    let child = submit(
        &cluster,
        follower,
        Some(&management),
        &plan_to_proto(&child),
    )
    .await
    .expect("the child plan is placed");
    let child_nginx = child.allocations[0]
        .identities
        .iter()
        .find(|i| i.workload == "nginx" && i.identity == "default")
        .expect("the child's nginx has a default identity")
        .jwt
        .clone();

    // Phase 1: WhoAmI names exactly the associated policies, on a follower.
    let expected = [
        (
            &nginx,
            vec!["nginx-task", "ns-wide", "web-group", "web-job"],
        ),
        (&sidecar, vec!["ns-wide", "web-group", "web-job"]),
        (&service, vec!["ns-wide", "web-group", "web-job"]),
        (
            &child_nginx,
            vec!["nginx-task", "ns-wide", "web-group", "web-job"],
        ),
    ];
    for (jwt, policies) in &expected {
        let whoami = cluster
            .acl(follower)
            .await
            .who_am_i(authorized(WhoAmIRequest {}, jwt))
            .await
            .expect("a workload identity authenticates")
            .into_inner();
        assert_eq!(whoami.r#type, "workload", "the caller is a workload");
        let mut names = whoami.policies.clone();
        names.sort();
        let workload = whoami.workload.expect("the workload is described");
        let who = format!("{}{}", workload.task, workload.service);
        assert_eq!(&names, policies, "the policies of {who}");
        let summary = whoami.summary.expect("a summary");
        assert!(
            !summary.management,
            "a workload is never management ({who})"
        );

        // Verify needs no authorization metadata and reports the same policies.
        let verify = VerifyRequest {
            token: (*jwt).clone(),
        };
        let verified = cluster.identities(follower).await.verify(verify).await;
        let mut names = verified.expect("verify is open").into_inner().policies;
        names.sort();
        assert_eq!(&names, policies, "verify reports the policies of {who}");
    }

    // Phase 2: Authorize agrees capability by capability.
    let table = [
        ("list-jobs", [true, true, true]),
        ("read-logs", [true, true, true]),
        ("read-fs", [true, true, true]),
        ("alloc-exec", [true, false, false]),
        ("submit-job", [false, false, false]),
        ("scale-job", [false, false, false]),
    ];
    let callers = [("nginx", &nginx), ("sidecar", &sidecar), ("http", &service)];
    for (cap, allowed) in table {
        for ((who, jwt), want) in callers.iter().zip(allowed) {
            let got = authorize(&cluster, follower, jwt, capability(cap)).await;
            assert_eq!(got, want, "{cap} for {who}");
        }
    }

    // Phase 3: renewal of its own identity only; no plan submission.
    let renew = |workload: &str, identity: &str| SignRequest {
        allocation_id: alloc.id.clone(),
        workload: workload.into(),
        identity: identity.into(),
    };
    let own = cluster
        .identities(follower)
        .await
        .sign(authorized(renew("nginx", "vault_default"), &nginx))
        .await;
    assert!(own.is_ok(), "nginx renews its own identity: {own:?}");
    let sibling = cluster
        .identities(follower)
        .await
        .sign(authorized(renew("sidecar", "default"), &nginx))
        .await;
    let code = sibling
        .expect_err("nginx may not renew sidecar's identity")
        .code();
    assert_eq!(code, Code::PermissionDenied, "renewing a sibling is denied");
    let plan = plan_to_proto(&sample_plan("from-a-workload", 1));
    let status = submit(&cluster, follower, Some(&nginx), &plan).await;
    let code = status
        .expect_err("a workload without submit-job cannot submit")
        .code();
    assert_eq!(code, Code::PermissionDenied, "submitting needs submit-job");
    cluster.shutdown().await;
}

/// A workload may read its own variables paths without any policy; an exact `deny` on one of
/// them, in a policy associated with its job, takes that away for that path only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exact_deny_on_a_workloads_own_variables_path_blocks_the_implicit_read() {
    let cluster = Cluster::start_with_acls(3).await;
    let follower = cluster.follower().await;
    let management = bootstrap(&cluster, follower).await;
    let placed = submit(
        &cluster,
        follower,
        Some(&management),
        &plan_to_proto(&sample_plan("variables", 1)),
    )
    .await
    .expect("the plan is placed");
    let nginx = placed.allocations[0]
        .identities
        .iter()
        .find(|i| i.workload == "nginx" && i.identity == "default")
        .expect("nginx has a default identity")
        .jwt
        .clone();
    let read = |path: &str| {
        Check::Variables(VariablesCheck {
            path: path.into(),
            operation: "read".into(),
        })
    };

    // Phase 1: the implicit grant, with no policy at all.
    for path in ["nomad/jobs/web", "nomad/jobs/web/frontend"] {
        let allowed = authorize(&cluster, follower, &nginx, read(path)).await;
        assert!(allowed, "the workload reads {path} implicitly");
    }
    let write = Check::Variables(VariablesCheck {
        path: "nomad/jobs/web".into(),
        operation: "write".into(),
    });
    let allowed = authorize(&cluster, follower, &nginx, write).await;
    assert!(!allowed, "the implicit grant never includes write");

    // Phase 2: an exact deny on its job's path, attached to the job.
    let rules = r#"
        namespace "default" {
          variables {
            path "nomad/jobs/web" { capabilities = ["deny"] }
          }
        }
    "#;
    let deny = policy("deny-web-vars", rules, Some(["default", "web", "", ""]));
    upsert_policy(&cluster, follower, &management, deny).await;
    // The write was acknowledged by the leader; the follower answers once it applied it.
    eventually(
        "the exact deny to block the implicit read",
        DEADLINE,
        || async {
            let allowed = authorize(&cluster, follower, &nginx, read("nomad/jobs/web")).await;
            (!allowed).then_some(())
        },
    )
    .await;
    let group_path = authorize(&cluster, follower, &nginx, read("nomad/jobs/web/frontend")).await;
    assert!(group_path, "the deny covers its exact path only");
    cluster.shutdown().await;
}

/// Bad ACL input is refused naming the field, and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_policies_and_tokens_are_refused_naming_the_field() {
    let cluster = Cluster::start_with_acls(3).await;
    let follower = cluster.follower().await;
    let management = bootstrap(&cluster, follower).await;
    let good = r#"namespace "default" { policy = "read" }"#;
    upsert_policy(&cluster, follower, &management, policy("ok", good, None)).await;
    let before = settled_index(&cluster).await;

    let bad_policies = [
        (policy("bad name!", good, None), "policy.name"),
        (policy("p", "namespace {", None), "policy.rules"),
        (
            policy("p", good, Some(["default", "", "g", ""])),
            "policy.job_acl",
        ),
        (
            policy("p", good, Some(["", "web", "", ""])),
            "policy.job_acl.namespace",
        ),
    ];
    for (bad, field) in bad_policies {
        let request = authorized(UpsertPolicyRequest { policy: Some(bad) }, &management);
        let status = cluster.acl(follower).await.upsert_policy(request).await;
        let status = status.expect_err("a bad policy is refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            status.message().contains(field),
            "names {field}: {}",
            status.message()
        );
    }
    let bad_tokens = [
        (("root", "admin", vec![]), "type"),
        (("c", "client", vec![]), "policies"),
        (("c", "client", vec!["missing"]), "policies[0]"),
        (("m", "management", vec!["ok"]), "policies"),
        (("c", "client", vec!["ok", "ok"]), "policies[1]"),
    ];
    for ((name, kind, policies), field) in bad_tokens {
        let request = CreateTokenRequest {
            name: name.into(),
            r#type: kind.into(),
            policies: policies.into_iter().map(String::from).collect(),
        };
        let status = cluster
            .acl(follower)
            .await
            .create_token(authorized(request, &management))
            .await
            .expect_err("a bad token request is refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            status.message().contains(field),
            "names {field}: {}",
            status.message()
        );
    }
    let after = settled_index(&cluster).await;
    assert_eq!(after, before, "nothing refused reached the log");
    cluster.shutdown().await;
}

/// Two bootstraps racing through different servers produce exactly one management token: the
/// loser is refused with FailedPrecondition, whether the leader's check or the apply stopped
/// it, and the state holds a single token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_bootstraps_create_exactly_one_management_token() {
    let cluster = Cluster::start_with_acls(3).await;
    let leader = cluster.leader().await;
    let follower = cluster.follower().await;
    let mut via_leader = cluster.acl(leader).await;
    let mut via_follower = cluster.acl(follower).await;

    let (a, b) = tokio::join!(
        via_leader.bootstrap(BootstrapRequest {}),
        via_follower.bootstrap(BootstrapRequest {})
    );
    let results = [a, b];
    let won = results.iter().filter(|r| r.is_ok()).count();
    let codes: Vec<_> = results
        .iter()
        .map(|r| r.as_ref().err().map(|s| s.code()))
        .collect();
    assert_eq!(won, 1, "exactly one bootstrap wins: {codes:?}");
    let lost = results.iter().find_map(|r| r.as_ref().err());
    let code = lost.expect("one bootstrap lost").code();
    assert_eq!(
        code,
        Code::FailedPrecondition,
        "the loser fails its precondition"
    );
    settled_index(&cluster).await;
    for id in 1..=3 {
        let applied = cluster.server(id).state().read();
        let tokens = applied.state.acl_tokens().count();
        assert_eq!(tokens, 1, "node {id} holds exactly one token");
    }
    cluster.shutdown().await;
}
