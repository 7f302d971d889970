//! `IdentityService`: verification on any server, renewal (re-signing a named identity) on the
//! leader only.
//!
//! Verification is open: the token being checked is the credential. Renewal is authorized as
//! [`authorize_renewal`] says.

use std::sync::Arc;
use std::time::Duration;

use sigil_acl::NamespaceCapability;
use sigil_identity::{IdentityClaims, VerifyError, peek_key_id};
use sigil_proto::v1::identity_service_client::IdentityServiceClient;
use sigil_proto::v1::identity_service_server::IdentityService;
use sigil_proto::v1::{SignRequest, SignResponse, VerifyRequest, VerifyResponse};
use sigil_types::{AllocId, Allocation, Command, CommandResponse, RenewEntry, Workload};
use tonic::{Request, Response, Status};

use crate::auth::{Caller, CallerIdentity, authenticate, workload_caller};
use crate::convert;
use crate::ctx::{Ctx, Route, caller_deadline, now_ms};
use crate::error::{ServiceError, ServiceResult};
use crate::plan::{base_claims, sign};

/// How long a server waits to catch up before it calls a key or allocation unknown.
const CATCH_UP_DEADLINE: Duration = Duration::from_secs(3);

/// The identity service of one server.
pub struct IdentitySvc {
    ctx: Arc<Ctx>,
}

/// A verified token: its claims and the live allocation it belongs to.
pub struct Verified {
    /// The token's claims.
    pub claims: IdentityClaims,
    /// The allocation named by `nomad_allocation_id`.
    pub alloc: Allocation,
}

impl IdentitySvc {
    /// The service over `ctx`.
    pub fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }
}

/// Verifies `token` against the applied keyring and allocations.
///
/// A follower that does not know the token's key, or its allocation, first catches up to the
/// leader's commit index: the token may come from a plan that committed a moment ago, and a
/// lagging server must not reject it.
pub async fn verify_token(ctx: &Ctx, token: &str) -> ServiceResult<Verified> {
    let key_id = peek_key_id(token).map_err(verify_error)?;
    if !ctx.keys.view().verifier.contains(&key_id) {
        ctx.catch_up(CATCH_UP_DEADLINE).await?;
    }
    let claims = ctx
        .keys
        .view()
        .verifier
        .verify(token, now_ms() / 1000)
        .map_err(verify_error)?;

    let alloc_id: AllocId = claims.nomad_allocation_id.parse().map_err(|_| {
        ServiceError::Unauthenticated("nomad_allocation_id is not an allocation id".into())
    })?;
    let mut alloc = ctx.state.read().state.alloc(&alloc_id).cloned();
    if alloc.is_none() {
        ctx.catch_up(CATCH_UP_DEADLINE).await?;
        alloc = ctx.state.read().state.alloc(&alloc_id).cloned();
    }
    let Some(alloc) = alloc else {
        return Err(ServiceError::Unauthenticated(format!(
            "allocation {alloc_id} does not exist"
        )));
    };
    if !alloc.is_live() {
        return Err(ServiceError::Unauthenticated(format!(
            "allocation {alloc_id} is stopped"
        )));
    }
    Ok(Verified { claims, alloc })
}

fn verify_error(err: VerifyError) -> ServiceError {
    ServiceError::Unauthenticated(format!("token rejected: {err}"))
}

#[tonic::async_trait]
impl IdentityService for IdentitySvc {
    async fn verify(
        &self,
        request: Request<VerifyRequest>,
    ) -> Result<Response<VerifyResponse>, Status> {
        let token = request.into_inner().token;
        if token.is_empty() {
            return Err(ServiceError::invalid("token", "must not be empty").into());
        }
        let verified = verify_token(&self.ctx, &token).await?;
        let claims_json = serde_json::to_string(&verified.claims)
            .map_err(|e| ServiceError::Internal(format!("claims do not encode: {e}")))?;
        let mut response = VerifyResponse {
            key_id: peek_key_id(&token)
                .map(|k| k.to_string())
                .unwrap_or_default(),
            claims_json,
            allocation_id: verified.alloc.id.to_string(),
            namespace: verified.alloc.namespace.clone(),
            job_id: verified.alloc.identity_job_id().to_owned(),
            policies: Vec::new(),
        };
        response.policies = workload_caller(&self.ctx.state.read().state, verified).policies;
        Ok(Response::new(response))
    }

    async fn sign(&self, request: Request<SignRequest>) -> Result<Response<SignResponse>, Status> {
        let caller = authenticate(&self.ctx, &request).await?;
        let req = request.get_ref();
        let alloc_id: AllocId = req.allocation_id.parse().map_err(|_| {
            ServiceError::invalid(
                "allocation_id",
                format!("{:?} is not a UUID", req.allocation_id),
            )
        })?;
        if req.workload.is_empty() {
            return Err(ServiceError::invalid("workload", "must name a task or service").into());
        }
        let identity = if req.identity.is_empty() {
            "default"
        } else {
            req.identity.as_str()
        };
        let identity = identity.to_owned();
        let workload = req.workload.clone();
        authorize_renewal(&self.ctx, &caller, alloc_id, &workload).await?;

        if let Route::Forward(channel) = self.ctx.route(&request)? {
            let call = |ch, req| async move { IdentityServiceClient::new(ch).sign(req).await };
            return self.ctx.forward(channel, request, call).await;
        }
        let deadline = caller_deadline(&request);
        let (issued, log_index) =
            renew_on_leader(&self.ctx, alloc_id, &workload, &identity, deadline).await?;
        Ok(Response::new(SignResponse {
            identity: Some(convert::identity_to_proto(&issued)),
            log_index,
        }))
    }
}

/// A renewal is allowed to a caller with `submit-job` in the allocation's namespace (the
/// scheduler that placed it), and to the workload itself: the JWT of a task or service of the
/// same allocation may renew that task's or service's own identities, so a workload can keep
/// its short-lived tokens fresh without holding an ACL token. It may not renew a sibling's.
async fn authorize_renewal(
    ctx: &Ctx,
    caller: &Caller,
    alloc_id: AllocId,
    workload: &str,
) -> ServiceResult<()> {
    if let CallerIdentity::Workload(verified) = &caller.identity {
        let claims = &verified.claims;
        let own_workload = claims.nomad_task.as_deref() == Some(workload)
            || claims.nomad_service.as_deref() == Some(workload);
        if verified.alloc.id == alloc_id && own_workload {
            return Ok(());
        }
    }
    let mut namespace = alloc_namespace(ctx, alloc_id);
    if namespace.is_none() {
        ctx.catch_up(CATCH_UP_DEADLINE).await?;
        namespace = alloc_namespace(ctx, alloc_id);
    }
    let namespace = namespace
        .ok_or_else(|| ServiceError::NotFound(format!("allocation {alloc_id} does not exist")))?;
    caller.require_namespace(&namespace, NamespaceCapability::SubmitJob)
}

fn alloc_namespace(ctx: &Ctx, alloc_id: AllocId) -> Option<String> {
    let applied = ctx.state.read();
    applied.state.alloc(&alloc_id).map(|a| a.namespace.clone())
}

async fn renew_on_leader(
    ctx: &Ctx,
    alloc_id: AllocId,
    workload: &str,
    identity: &str,
    deadline: Duration,
) -> ServiceResult<(sigil_types::IssuedIdentity, u64)> {
    let (alloc, job) = {
        let applied = ctx.state.read();
        let alloc = applied.state.alloc(&alloc_id).cloned().ok_or_else(|| {
            ServiceError::NotFound(format!("allocation {alloc_id} does not exist"))
        })?;
        let job = applied.state.job(&alloc.namespace, &alloc.job_id).cloned();
        (
            alloc,
            job.ok_or_else(|| ServiceError::Internal(format!("job of {alloc_id} missing")))?,
        )
    };
    if !alloc.is_live() {
        return Err(ServiceError::FailedPrecondition(format!(
            "allocation {alloc_id} is stopped"
        )));
    }
    let group = job.group(&alloc.group).ok_or_else(|| {
        ServiceError::Internal(format!("group {} of {alloc_id} missing", alloc.group))
    })?;
    let (kind, blocks) = if let Some(task) = group.tasks.iter().find(|t| t.name == workload) {
        (Workload::Task(task.name.clone()), &task.identities)
    } else if let Some(service) = group.services.iter().find(|s| s.name == workload) {
        (Workload::Service(service.name.clone()), &service.identities)
    } else {
        return Err(ServiceError::NotFound(format!(
            "{alloc_id} has no task or service {workload:?}"
        )));
    };
    let block = sigil_types::workload_identities(blocks)
        .into_iter()
        .find(|b| b.name() == identity)
        .ok_or_else(|| {
            ServiceError::NotFound(format!("{workload:?} has no identity {identity:?}"))
        })?;

    let signer = ctx
        .keys
        .view()
        .active
        .ok_or_else(|| ServiceError::unavailable("the keyring has no usable active key"))?;
    let mut claims = base_claims(&ctx.config, &job, group, alloc_id, &block);
    claims.workload = match &kind {
        Workload::Task(name) => sigil_identity::Workload::Task(name.clone()),
        Workload::Service(name) => sigil_identity::Workload::Service(name.clone()),
    };
    if let Workload::Task(name) = &kind {
        let task = group
            .tasks
            .iter()
            .find(|t| &t.name == name)
            .expect("found above");
        claims.vault_role = task
            .vault
            .as_ref()
            .map(|v| v.role.clone())
            .filter(|s| !s.is_empty());
        claims.vault_namespace = task
            .vault
            .as_ref()
            .map(|v| v.namespace.clone())
            .filter(|s| !s.is_empty());
        let consul = task.consul.as_ref().or(group.consul.as_ref());
        claims.consul_namespace = consul
            .map(|c| c.namespace.clone())
            .filter(|s| !s.is_empty());
    }
    let term = ctx.term();
    let issued = sign(&signer, claims, kind, &block, now_ms())?;
    let entry = RenewEntry {
        alloc_id,
        identity: issued.clone(),
        signer: ctx.id,
        term,
    };
    let (response, log_index) = ctx
        .propose(Command::RenewIdentity(Box::new(entry)), deadline)
        .await?;
    match response {
        CommandResponse::Applied => Ok((issued, log_index)),
        CommandResponse::Rejected(rejection) => Err(rejection.into()),
        other => Err(ServiceError::Internal(format!(
            "renewal applied as {other:?}"
        ))),
    }
}
