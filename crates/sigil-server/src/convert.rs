//! Conversions between the public protobuf messages and Sigil's domain types. A field that
//! does not convert is an `InvalidArgument` naming it.

use sigil_keyring::RootKeyMeta;
use sigil_proto::v1 as pb;
use sigil_types::{
    AllocId, Allocation, ConsulBlock, IdentityBlock, IssuedIdentity, Job, Placement, Plan, PlanId,
    PlanOutcome, Service, Task, TaskGroup, VaultBlock,
};

use crate::error::{ServiceError, ServiceResult};

/// A submitted plan as a domain [`Plan`] (not yet validated).
pub fn plan_from_proto(req: &pb::SubmitPlanRequest) -> ServiceResult<Plan> {
    let job = req
        .job
        .as_ref()
        .ok_or_else(|| ServiceError::invalid("job", "a plan needs a job"))?;
    let stop = req
        .stop
        .iter()
        .enumerate()
        .map(|(i, id)| {
            id.parse::<AllocId>().map_err(|e| {
                ServiceError::invalid(format!("stop[{i}]"), format!("{id:?} is not a UUID: {e}"))
            })
        })
        .collect::<ServiceResult<_>>()?;
    Ok(Plan {
        plan_id: PlanId(req.plan_id.clone()),
        job: job_from_proto(job),
        place: req
            .place
            .iter()
            .map(|p| Placement {
                group: p.group.clone(),
                node_id: p.node_id.clone(),
            })
            .collect(),
        stop,
    })
}

fn job_from_proto(job: &pb::Job) -> Job {
    Job {
        namespace: job.namespace.clone(),
        id: job.id.clone(),
        parent_id: (!job.parent_id.is_empty()).then(|| job.parent_id.clone()),
        groups: job.groups.iter().map(group_from_proto).collect(),
    }
}

fn group_from_proto(group: &pb::TaskGroup) -> TaskGroup {
    TaskGroup {
        name: group.name.clone(),
        tasks: group
            .tasks
            .iter()
            .map(|t| Task {
                name: t.name.clone(),
                identities: t.identities.iter().map(identity_from_proto).collect(),
                vault: t.vault.as_ref().map(|v| VaultBlock {
                    role: v.role.clone(),
                    namespace: v.namespace.clone(),
                }),
                consul: t.consul.as_ref().map(|c| ConsulBlock {
                    namespace: c.namespace.clone(),
                }),
            })
            .collect(),
        services: group
            .services
            .iter()
            .map(|s| Service {
                name: s.name.clone(),
                identities: s.identities.iter().map(identity_from_proto).collect(),
            })
            .collect(),
        consul: group.consul.as_ref().map(|c| ConsulBlock {
            namespace: c.namespace.clone(),
        }),
    }
}

fn identity_from_proto(block: &pb::IdentityBlock) -> IdentityBlock {
    IdentityBlock {
        name: block.name.clone(),
        aud: block.aud.clone(),
        ttl_seconds: block.ttl_seconds,
        env: block.env,
        file: block.file,
    }
}

/// A domain plan as the request that submits it (used by the CLI and tests).
pub fn plan_to_proto(plan: &Plan) -> pb::SubmitPlanRequest {
    let identity = |b: &IdentityBlock| pb::IdentityBlock {
        name: b.name.clone(),
        aud: b.aud.clone(),
        ttl_seconds: b.ttl_seconds,
        env: b.env,
        file: b.file,
    };
    let consul = |c: &ConsulBlock| pb::ConsulBlock {
        namespace: c.namespace.clone(),
    };
    pb::SubmitPlanRequest {
        plan_id: plan.plan_id.0.clone(),
        job: Some(pb::Job {
            namespace: plan.job.namespace.clone(),
            id: plan.job.id.clone(),
            parent_id: plan.job.parent_id.clone().unwrap_or_default(),
            groups: plan
                .job
                .groups
                .iter()
                .map(|g| pb::TaskGroup {
                    name: g.name.clone(),
                    tasks: g
                        .tasks
                        .iter()
                        .map(|t| pb::Task {
                            name: t.name.clone(),
                            identities: t.identities.iter().map(identity).collect(),
                            vault: t.vault.as_ref().map(|v| pb::VaultBlock {
                                role: v.role.clone(),
                                namespace: v.namespace.clone(),
                            }),
                            consul: t.consul.as_ref().map(consul),
                        })
                        .collect(),
                    services: g
                        .services
                        .iter()
                        .map(|s| pb::Service {
                            name: s.name.clone(),
                            identities: s.identities.iter().map(identity).collect(),
                        })
                        .collect(),
                    consul: g.consul.as_ref().map(consul),
                })
                .collect(),
        }),
        place: plan
            .place
            .iter()
            .map(|p| pb::Placement {
                group: p.group.clone(),
                node_id: p.node_id.clone(),
            })
            .collect(),
        stop: plan.stop.iter().map(ToString::to_string).collect(),
    }
}

/// A plan's result as the response.
pub fn outcome_to_proto(outcome: &PlanOutcome) -> pb::SubmitPlanResponse {
    pb::SubmitPlanResponse {
        plan_id: outcome.plan_id.0.clone(),
        allocations: outcome.allocations.iter().map(alloc_to_proto).collect(),
        stopped: outcome.stopped.iter().map(ToString::to_string).collect(),
        log_index: outcome.log_index,
        replayed: outcome.replayed,
    }
}

/// An allocation with its tokens.
pub fn alloc_to_proto(alloc: &Allocation) -> pb::Allocation {
    pb::Allocation {
        id: alloc.id.to_string(),
        namespace: alloc.namespace.clone(),
        job_id: alloc.job_id.clone(),
        group: alloc.group.clone(),
        node_id: alloc.node_id.clone(),
        identities: alloc.identities.iter().map(identity_to_proto).collect(),
        status: alloc.status.as_str().to_owned(),
    }
}

/// One issued identity.
pub fn identity_to_proto(identity: &IssuedIdentity) -> pb::SignedIdentity {
    pb::SignedIdentity {
        workload: identity.workload.name().to_owned(),
        workload_type: identity.workload.kind().to_owned(),
        identity: identity.identity.clone(),
        key_id: identity.key_id.to_string(),
        jwt: identity.jwt.clone(),
        expires_at: identity.expires_at.unwrap_or(0),
    }
}

/// Key metadata (never material).
pub fn key_meta_to_proto(meta: &RootKeyMeta) -> pb::RootKeyMeta {
    pb::RootKeyMeta {
        key_id: meta.key_id.to_string(),
        algorithm: "EdDSA".to_owned(),
        state: meta.state.as_str().to_owned(),
        create_time_ms: meta.create_time_ms,
        publish_time_ms: meta.publish_time_ms.unwrap_or(0),
    }
}
