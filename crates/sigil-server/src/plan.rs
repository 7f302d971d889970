//! `PlanService.Submit`: the caller needs `submit-job` in the plan's namespace; the leader
//! validates a plan, signs every identity of every placed task
//! and service with the active key, and commits plan and tokens in one Raft entry. Followers
//! forward.

use std::sync::Arc;

use sigil_acl::NamespaceCapability;
use sigil_identity::{SigningKey, WorkloadClaims};
use sigil_proto::v1::plan_service_client::PlanServiceClient;
use sigil_proto::v1::plan_service_server::PlanService;
use sigil_proto::v1::{SubmitPlanRequest, SubmitPlanResponse};
use sigil_types::{
    AllocId, AllocStatus, Allocation, Command, CommandResponse, IdentityBlock, IssuedIdentity, Job,
    Plan, PlanEntry, PlanOutcome, TaskGroup, Workload, workload_identities,
};
use tonic::{Request, Response, Status};

use crate::auth::authenticate;
use crate::config::ServerConfig;
use crate::convert;
use crate::ctx::{Ctx, Route, caller_deadline, now_ms};
use crate::error::{ServiceError, ServiceResult};

/// Plans with more identities than this are signed on several threads.
const PARALLEL_SIGNING_THRESHOLD: usize = 64;

/// The plan service of one server.
pub struct PlanSvc {
    ctx: Arc<Ctx>,
}

impl PlanSvc {
    /// The service over `ctx`.
    pub fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    async fn submit_on_leader(
        &self,
        plan: Plan,
        deadline: std::time::Duration,
    ) -> ServiceResult<PlanOutcome> {
        // A retry of a plan that already applied gets the first result, not a second placement.
        if let Some(outcome) = self.ctx.state.read().state.plan_outcome(&plan.plan_id) {
            return Ok(outcome);
        }
        self.check_stops(&plan)?;

        let signer =
            self.ctx
                .keys
                .view()
                .active
                .ok_or_else(|| match self.ctx.keys.view().problem {
                    Some(problem) => {
                        ServiceError::unavailable(format!("this leader cannot sign: {problem}"))
                    }
                    None => ServiceError::unavailable(
                        "the keyring has no active key yet; retry shortly",
                    ),
                })?;
        let term = self.ctx.term();
        let time_ms = now_ms();
        let config = self.ctx.config.clone();
        let job = plan.job.clone();
        let placements = plan.place.clone();
        let allocations = tokio::task::spawn_blocking(move || {
            build_allocations(&config, &signer, &job, &placements, time_ms)
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("signing task failed: {e}")))??;

        let entry = PlanEntry {
            plan_id: plan.plan_id,
            job: plan.job,
            allocations,
            stop: plan.stop,
            signer: self.ctx.id,
            term,
            time_ms,
        };
        let (response, _) = self
            .ctx
            .propose(Command::ApplyPlan(Box::new(entry)), deadline)
            .await?;
        match response {
            CommandResponse::Plan(outcome) => Ok(*outcome),
            CommandResponse::Rejected(rejection) => Err(rejection.into()),
            other => Err(ServiceError::Internal(format!("plan applied as {other:?}"))),
        }
    }

    /// Stops are checked again when the entry applies; checking here gives the caller a clear
    /// error without signing anything.
    fn check_stops(&self, plan: &Plan) -> ServiceResult<()> {
        let applied = self.ctx.state.read();
        for (i, id) in plan.stop.iter().enumerate() {
            let Some(alloc) = applied.state.alloc(id) else {
                return Err(ServiceError::NotFound(format!(
                    "stop[{i}]: allocation {id} does not exist"
                )));
            };
            if (alloc.namespace.as_str(), alloc.job_id.as_str())
                != (plan.job.namespace.as_str(), plan.job.id.as_str())
            {
                return Err(ServiceError::invalid(
                    format!("stop[{i}]"),
                    format!(
                        "allocation {id} belongs to job {}/{}",
                        alloc.namespace, alloc.job_id
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl PlanService for PlanSvc {
    async fn submit(
        &self,
        request: Request<SubmitPlanRequest>,
    ) -> Result<Response<SubmitPlanResponse>, Status> {
        let caller = authenticate(&self.ctx, &request).await?;
        let plan = convert::plan_from_proto(request.get_ref())?;
        caller.require_namespace(&plan.job.namespace, NamespaceCapability::SubmitJob)?;
        plan.validate().map_err(ServiceError::from)?;

        if let Route::Forward(channel) = self.ctx.route(&request)? {
            let call = |ch, req| async move { PlanServiceClient::new(ch).submit(req).await };
            return self.ctx.forward(channel, request, call).await;
        }

        let deadline = caller_deadline(&request);
        let plan_id = plan.plan_id.clone();
        let outcome = self
            .submit_on_leader(plan, deadline)
            .await
            .inspect_err(|err| {
                tracing::warn!(plan_id = %plan_id, error = %err, "plan refused");
            })?;
        tracing::debug!(
            plan_id = %outcome.plan_id,
            log_index = outcome.log_index,
            allocs = outcome.allocations.len(),
            replayed = outcome.replayed,
            "plan applied"
        );
        Ok(Response::new(convert::outcome_to_proto(&outcome)))
    }
}

/// Builds every allocation of a plan with all of its identities signed by `signer`. Runs on a
/// blocking thread; large plans are split across threads, since signing is pure CPU work.
pub fn build_allocations(
    config: &ServerConfig,
    signer: &SigningKey,
    job: &Job,
    placements: &[sigil_types::Placement],
    time_ms: u64,
) -> ServiceResult<Vec<Allocation>> {
    let groups: Vec<&TaskGroup> = placements
        .iter()
        .map(|p| {
            job.group(&p.group)
                .expect("validated: every placement names a job group")
        })
        .collect();
    let identities: usize = groups.iter().map(|g| g.identity_count()).sum();
    let build =
        |i: usize| build_allocation(config, signer, job, &placements[i], groups[i], time_ms);

    if identities < PARALLEL_SIGNING_THRESHOLD || placements.len() < 2 {
        return (0..placements.len()).map(build).collect();
    }
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(placements.len());
    let chunk = placements.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let range = t * chunk..((t + 1) * chunk).min(placements.len());
                scope.spawn(move || range.map(build).collect::<ServiceResult<Vec<_>>>())
            })
            .collect();
        let mut all = Vec::with_capacity(placements.len());
        for worker in workers {
            all.extend(worker.join().expect("a signing thread panicked")?);
        }
        Ok(all)
    })
}

fn build_allocation(
    config: &ServerConfig,
    signer: &SigningKey,
    job: &Job,
    placement: &sigil_types::Placement,
    group: &TaskGroup,
    time_ms: u64,
) -> ServiceResult<Allocation> {
    let id = AllocId::random();
    let mut identities = Vec::with_capacity(group.identity_count());
    for task in &group.tasks {
        let consul = task.consul.as_ref().or(group.consul.as_ref());
        for block in workload_identities(&task.identities) {
            let mut claims = base_claims(config, job, group, id, &block);
            claims.workload = sigil_identity::Workload::Task(task.name.clone());
            claims.vault_role = task.vault.as_ref().and_then(|v| non_empty(&v.role));
            claims.vault_namespace = task.vault.as_ref().and_then(|v| non_empty(&v.namespace));
            claims.consul_namespace = consul.and_then(|c| non_empty(&c.namespace));
            let workload = Workload::Task(task.name.clone());
            identities.push(sign(signer, claims, workload, &block, time_ms)?);
        }
    }
    for service in &group.services {
        for block in workload_identities(&service.identities) {
            let mut claims = base_claims(config, job, group, id, &block);
            claims.workload = sigil_identity::Workload::Service(service.name.clone());
            claims.consul_namespace = group.consul.as_ref().and_then(|c| non_empty(&c.namespace));
            let workload = Workload::Service(service.name.clone());
            identities.push(sign(signer, claims, workload, &block, time_ms)?);
        }
    }
    Ok(Allocation {
        id,
        namespace: job.namespace.clone(),
        job_id: job.id.clone(),
        parent_job_id: job.parent_id.clone(),
        group: group.name.clone(),
        node_id: placement.node_id.clone(),
        status: AllocStatus::Running,
        signing_key_id: signer.key_id(),
        create_time_ms: time_ms,
        identities,
    })
}

/// Claims common to every identity of an allocation; the caller fills in the workload.
pub fn base_claims(
    config: &ServerConfig,
    job: &Job,
    group: &TaskGroup,
    alloc: AllocId,
    block: &IdentityBlock,
) -> WorkloadClaims {
    let audience = if block.aud.is_empty() {
        vec![config.default_audience.clone()]
    } else {
        block.aud.clone()
    };
    WorkloadClaims {
        region: config.region.clone(),
        namespace: job.namespace.clone(),
        job_id: job.id.clone(),
        parent_job_id: job.parent_id.clone(),
        group: group.name.clone(),
        workload: sigil_identity::Workload::Task(String::new()),
        identity_name: block.name().to_owned(),
        audience,
        issuer: config.issuer.clone(),
        alloc_id: alloc.to_string(),
        vault_role: None,
        vault_namespace: None,
        consul_namespace: None,
        ttl_secs: (block.ttl_seconds > 0).then_some(block.ttl_seconds),
    }
}

/// Signs one identity at `time_ms`.
pub fn sign(
    signer: &SigningKey,
    claims: WorkloadClaims,
    workload: Workload,
    block: &IdentityBlock,
    time_ms: u64,
) -> ServiceResult<IssuedIdentity> {
    let claims = claims.into_claims(time_ms / 1000, uuid::Uuid::new_v4());
    let expires_at = claims.exp;
    let signed = signer
        .sign(&claims)
        .map_err(|e| ServiceError::Internal(format!("signing failed: {e}")))?;
    Ok(IssuedIdentity {
        workload,
        identity: block.name().to_owned(),
        key_id: signed.key_id,
        jwt: signed.jwt,
        expires_at,
    })
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}
