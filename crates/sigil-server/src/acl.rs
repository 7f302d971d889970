//! `AclService`: the one-time bootstrap, policy and token writes (leader only, followers
//! forward), policy and token reads (served here, after catching up when a name is unknown),
//! and the caller's own view: WhoAmI and Authorize.
//!
//! Secrets are drawn on the leader and only their SHA-256 enters the Raft entry; the plaintext
//! is in the creating call's answer and nowhere else. When that answer is lost (the caller
//! timed out after the entry committed) the token exists but its secret is gone: delete it by
//! accessor id and create another. For the bootstrap token that needs a cluster with no other
//! management token; Sigil has no bootstrap reset yet (Nomad's is a reset index written to a
//! file on the leader), so a lost bootstrap answer means restoring from a fresh cluster.

use std::sync::Arc;
use std::time::Duration;

use sigil_acl::{
    AclPolicy, JobAcl, NamespaceCapability, OperatorCapability, PolicyError, PolicyRules,
    VariableOp,
};
use sigil_proto::v1 as pb;
use sigil_proto::v1::acl_service_client::AclServiceClient;
use sigil_proto::v1::acl_service_server::AclService;
use sigil_proto::v1::authorize_request::Check;
use sigil_types::{AclToken, Command, CommandResponse, MAX_TOKEN_NAME_CHARS, TokenKind};
use tonic::{Request, Response, Status};

use crate::auth::{Caller, CallerIdentity, SecretId, authenticate, workload_scope};
use crate::ctx::{Ctx, Route, caller_deadline, now_ms};
use crate::error::{ServiceError, ServiceResult};

/// How long a read waits to catch up with the leader before it calls a name unknown.
const CATCH_UP_DEADLINE: Duration = Duration::from_secs(3);

/// The name of the token the bootstrap creates.
const BOOTSTRAP_TOKEN_NAME: &str = "Bootstrap Token";

/// The ACL service of one server.
pub struct AclSvc {
    ctx: Arc<Ctx>,
}

impl AclSvc {
    /// The service over `ctx`.
    pub fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    /// Refuses every ACL call on a server with ACLs disabled: a token created there would
    /// protect nothing, and a bootstrap would be spent.
    fn require_enabled(&self) -> ServiceResult<()> {
        if self.ctx.config.acl.enabled {
            return Ok(());
        }
        Err(ServiceError::FailedPrecondition(
            "ACLs are disabled on this server (acl.enabled = false)".into(),
        ))
    }

    /// Authenticates the caller and requires a management token.
    async fn management<T>(&self, request: &Request<T>) -> ServiceResult<Caller> {
        self.require_enabled()?;
        let caller = authenticate(&self.ctx, request).await?;
        caller.require_management()?;
        Ok(caller)
    }

    /// Proposes an ACL write and returns its log index once applied.
    async fn propose(&self, command: Command, deadline: Duration) -> ServiceResult<u64> {
        let (response, log_index) = self.ctx.propose(command, deadline).await?;
        match response {
            CommandResponse::Applied => Ok(log_index),
            CommandResponse::Rejected(rejection) => Err(rejection.into()),
            other => Err(ServiceError::Internal(format!(
                "ACL write applied as {other:?}"
            ))),
        }
    }

    /// Draws a secret, proposes the token with the secret's hash, and answers with the secret.
    async fn create(
        &self,
        token: impl FnOnce(&SecretId) -> AclToken,
        bootstrap: bool,
        deadline: Duration,
    ) -> ServiceResult<pb::CreateTokenResponse> {
        let secret = SecretId::generate();
        let token = token(&secret);
        let command = if bootstrap {
            Command::BootstrapAcl(Box::new(token.clone()))
        } else {
            Command::CreateToken(Box::new(token.clone()))
        };
        let log_index = self.propose(command, deadline).await?;
        tracing::info!(
            accessor_id = %token.accessor_id,
            kind = %token.kind,
            bootstrap,
            log_index,
            "ACL token created"
        );
        Ok(pb::CreateTokenResponse {
            token: Some(token_to_proto(&token)),
            secret_id: secret.expose(),
            log_index,
        })
    }

    /// Reads a value from the applied state, catching up with the leader once if it is absent.
    async fn read_or_catch_up<T>(
        &self,
        read: impl Fn(&sigil_state::SigilState) -> Option<T>,
    ) -> ServiceResult<Option<T>> {
        if let Some(found) = read(&self.ctx.state.read().state) {
            return Ok(Some(found));
        }
        self.ctx.catch_up(CATCH_UP_DEADLINE).await?;
        Ok(read(&self.ctx.state.read().state))
    }
}

#[tonic::async_trait]
impl AclService for AclSvc {
    async fn bootstrap(
        &self,
        request: Request<pb::BootstrapRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        self.require_enabled()?;
        if let Route::Forward(channel) = self.ctx.route(&request)? {
            let call = |ch, req| async move { AclServiceClient::new(ch).bootstrap(req).await };
            return self.ctx.forward(channel, request, call).await;
        }

        // The entry is refused on apply too; checking first spares drawing a secret.
        if let Some(done) = self.ctx.state.read().state.acl_bootstrap() {
            let message = format!(
                "the ACL system was already bootstrapped at log index {}",
                done.log_index
            );
            return Err(ServiceError::FailedPrecondition(message).into());
        }
        let deadline = caller_deadline(&request);
        let token = |secret: &SecretId| AclToken {
            accessor_id: uuid::Uuid::new_v4(),
            secret_hash: secret.hash(),
            name: BOOTSTRAP_TOKEN_NAME.into(),
            kind: TokenKind::Management,
            policies: Vec::new(),
            create_time_ms: now_ms(),
        };
        Ok(Response::new(self.create(token, true, deadline).await?))
    }

    async fn upsert_policy(
        &self,
        request: Request<pb::UpsertPolicyRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let caller = self.management(&request).await?;
        let policy = policy_from_proto(request.get_ref().policy.as_ref())?;
        if let Route::Forward(channel) = self.ctx.route(&request)? {
            let call = |ch, req| async move { AclServiceClient::new(ch).upsert_policy(req).await };
            return self.ctx.forward(channel, request, call).await;
        }

        let name = policy.name.clone();
        let deadline = caller_deadline(&request);
        let log_index = self
            .propose(Command::UpsertPolicy(Box::new(policy)), deadline)
            .await?;
        let caller = caller.describe();
        tracing::info!(policy = %name, %caller, log_index, "ACL policy written");
        Ok(Response::new(pb::WriteResponse { log_index }))
    }

    async fn delete_policy(
        &self,
        request: Request<pb::DeletePolicyRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let caller = self.management(&request).await?;
        let name = request.get_ref().name.clone();
        if name.is_empty() {
            return Err(ServiceError::invalid("name", "must name a policy").into());
        }
        if let Route::Forward(channel) = self.ctx.route(&request)? {
            let call = |ch, req| async move { AclServiceClient::new(ch).delete_policy(req).await };
            return self.ctx.forward(channel, request, call).await;
        }

        let deadline = caller_deadline(&request);
        let command = Command::DeletePolicy { name: name.clone() };
        let log_index = self.propose(command, deadline).await?;
        let caller = caller.describe();
        tracing::info!(policy = %name, %caller, log_index, "ACL policy deleted");
        Ok(Response::new(pb::WriteResponse { log_index }))
    }

    async fn get_policy(
        &self,
        request: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::AclPolicy>, Status> {
        self.management(&request).await?;
        let name = &request.get_ref().name;
        let policy = self
            .read_or_catch_up(|state| state.acl_policy(name).cloned())
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("ACL policy {name:?} does not exist")))?;
        Ok(Response::new(policy_to_proto(&policy)))
    }

    async fn list_policies(
        &self,
        request: Request<pb::ListPoliciesRequest>,
    ) -> Result<Response<pb::ListPoliciesResponse>, Status> {
        self.management(&request).await?;
        let policies = self
            .ctx
            .state
            .read()
            .state
            .acl_policies()
            .map(policy_to_proto)
            .collect();
        Ok(Response::new(pb::ListPoliciesResponse { policies }))
    }

    async fn create_token(
        &self,
        request: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        let caller = self.management(&request).await?;
        let (name, kind, policies) = token_request(request.get_ref())?;
        if let Route::Forward(channel) = self.ctx.route(&request)? {
            let call = |ch, req| async move { AclServiceClient::new(ch).create_token(req).await };
            return self.ctx.forward(channel, request, call).await;
        }

        // Checked on the leader, whose applied state has every acknowledged policy write; the
        // entry is checked again when it applies.
        check_policies_exist(&self.ctx.state.read().state, &policies)?;
        let deadline = caller_deadline(&request);
        let token = |secret: &SecretId| AclToken {
            accessor_id: uuid::Uuid::new_v4(),
            secret_hash: secret.hash(),
            name,
            kind,
            policies,
            create_time_ms: now_ms(),
        };
        let response = self.create(token, false, deadline).await?;
        tracing::debug!(caller = %caller.describe(), "token created on request");
        Ok(Response::new(response))
    }

    async fn list_tokens(
        &self,
        request: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        self.management(&request).await?;
        let tokens = self
            .ctx
            .state
            .read()
            .state
            .acl_tokens()
            .map(token_to_proto)
            .collect();
        Ok(Response::new(pb::ListTokensResponse { tokens }))
    }

    async fn get_token(
        &self,
        request: Request<pb::GetTokenRequest>,
    ) -> Result<Response<pb::AclToken>, Status> {
        self.management(&request).await?;
        let accessor_id = parse_accessor(&request.get_ref().accessor_id)?;
        let token = self
            .read_or_catch_up(|state| state.acl_token(&accessor_id).cloned())
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(format!("ACL token {accessor_id} does not exist"))
            })?;
        Ok(Response::new(token_to_proto(&token)))
    }

    async fn delete_token(
        &self,
        request: Request<pb::DeleteTokenRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let caller = self.management(&request).await?;
        let accessor_id = parse_accessor(&request.get_ref().accessor_id)?;
        if let Route::Forward(channel) = self.ctx.route(&request)? {
            let call = |ch, req| async move { AclServiceClient::new(ch).delete_token(req).await };
            return self.ctx.forward(channel, request, call).await;
        }

        let deadline = caller_deadline(&request);
        let log_index = self
            .propose(Command::DeleteToken { accessor_id }, deadline)
            .await?;
        tracing::info!(%accessor_id, caller = %caller.describe(), log_index, "ACL token deleted");
        Ok(Response::new(pb::WriteResponse { log_index }))
    }

    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        self.require_enabled()?;
        let caller = authenticate(&self.ctx, &request).await?;
        Ok(Response::new(who_am_i(&caller)?))
    }

    async fn authorize(
        &self,
        request: Request<pb::AuthorizeRequest>,
    ) -> Result<Response<pb::AuthorizeResponse>, Status> {
        self.require_enabled()?;
        let caller = authenticate(&self.ctx, &request).await?;
        Ok(Response::new(authorize(&caller, request.get_ref())?))
    }
}

/// Builds a validated policy from the request, naming the field that is wrong.
fn policy_from_proto(policy: Option<&pb::AclPolicy>) -> ServiceResult<AclPolicy> {
    let policy = policy.ok_or_else(|| ServiceError::invalid("policy", "is required"))?;
    let rules = PolicyRules::parse(&policy.rules)
        .map_err(|e| ServiceError::invalid("policy.rules", e.to_string()))?;
    let job_acl = policy.job_acl.as_ref().and_then(|j| {
        let set = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let fields = [&j.namespace, &j.job, &j.group, &j.task];
        // Narrower fields without the namespace are kept, so validation names the mistake.
        fields.iter().any(|f| !f.is_empty()).then(|| JobAcl {
            namespace: j.namespace.clone(),
            job: set(&j.job),
            group: set(&j.group),
            task: set(&j.task),
        })
    });
    AclPolicy::new(&policy.name, &policy.description, rules, job_acl)
        .map_err(|e| ServiceError::invalid(policy_error_field(&e), e.to_string()))
}

fn policy_error_field(err: &PolicyError) -> &'static str {
    match err {
        PolicyError::InvalidPolicyName { .. } => "policy.name",
        PolicyError::DescriptionTooLong { .. } => "policy.description",
        PolicyError::JobAclWithoutNamespace => "policy.job_acl.namespace",
        PolicyError::JobAclEmptyField { .. } => "policy.job_acl",
        PolicyError::JobAclGroupWithoutJob => "policy.job_acl.job",
        PolicyError::JobAclTaskWithoutGroup => "policy.job_acl.group",
        _ => "policy.rules",
    }
}

/// Checks a token request: the name, the type, and the policies the type allows.
fn token_request(req: &pb::CreateTokenRequest) -> ServiceResult<(String, TokenKind, Vec<String>)> {
    let chars = req.name.chars().count();
    if chars > MAX_TOKEN_NAME_CHARS {
        let reason = format!("is {chars} characters; at most {MAX_TOKEN_NAME_CHARS} allowed");
        return Err(ServiceError::invalid("name", reason));
    }
    let kind = match req.r#type.as_str() {
        "management" => TokenKind::Management,
        "client" => TokenKind::Client,
        other => {
            let reason = format!("{other:?} is not \"management\" or \"client\"");
            return Err(ServiceError::invalid("type", reason));
        }
    };
    match kind {
        TokenKind::Management if !req.policies.is_empty() => {
            let reason = "a management token takes no policies";
            return Err(ServiceError::invalid("policies", reason));
        }
        TokenKind::Client if req.policies.is_empty() => {
            let reason = "a client token needs at least one policy";
            return Err(ServiceError::invalid("policies", reason));
        }
        _ => {}
    }
    for (i, name) in req.policies.iter().enumerate() {
        if req.policies[..i].contains(name) {
            return Err(ServiceError::invalid(
                format!("policies[{i}]"),
                format!("{name:?} is listed twice"),
            ));
        }
    }
    Ok((req.name.clone(), kind, req.policies.clone()))
}

fn check_policies_exist(state: &sigil_state::SigilState, policies: &[String]) -> ServiceResult<()> {
    for (i, name) in policies.iter().enumerate() {
        if state.acl_policy(name).is_none() {
            return Err(ServiceError::invalid(
                format!("policies[{i}]"),
                format!("ACL policy {name:?} does not exist"),
            ));
        }
    }
    Ok(())
}

fn parse_accessor(text: &str) -> ServiceResult<uuid::Uuid> {
    text.parse()
        .map_err(|_| ServiceError::invalid("accessor_id", format!("{text:?} is not a UUID")))
}

fn who_am_i(caller: &Caller) -> ServiceResult<pb::WhoAmIResponse> {
    let mut response = pb::WhoAmIResponse {
        policies: caller.policies.clone(),
        summary: Some(summary_to_proto(&caller.acl.summary())),
        ..Default::default()
    };
    match &caller.identity {
        CallerIdentity::AclsDisabled => {
            return Err(ServiceError::FailedPrecondition("ACLs are disabled".into()));
        }
        CallerIdentity::Token(token) => {
            response.r#type = token.kind.as_str().into();
            response.token = Some(token_to_proto(token));
        }
        CallerIdentity::Workload(verified) => {
            let scope = workload_scope(verified);
            let claims_json = serde_json::to_string(&verified.claims)
                .map_err(|e| ServiceError::Internal(format!("claims do not encode: {e}")))?;
            response.r#type = "workload".into();
            response.workload = Some(pb::WorkloadCaller {
                namespace: scope.namespace,
                job_id: scope.job,
                group: scope.group,
                task: scope.task.unwrap_or_default(),
                service: verified.claims.nomad_service.clone().unwrap_or_default(),
                allocation_id: verified.alloc.id.to_string(),
                claims_json,
            });
        }
    }
    Ok(response)
}

/// Answers one capability question about the caller. Unknown capability or operation names
/// are bad input, not a silent "no", so that a misspelt check is noticed.
fn authorize(caller: &Caller, req: &pb::AuthorizeRequest) -> ServiceResult<pb::AuthorizeResponse> {
    let need_namespace = || {
        if req.namespace.is_empty() {
            return Err(ServiceError::invalid(
                "namespace",
                "is required for this check",
            ));
        }
        Ok(req.namespace.as_str())
    };
    let (allowed, what) = match &req.check {
        Some(Check::NamespaceCapability(name)) => {
            let cap = NamespaceCapability::parse(name).ok_or_else(|| {
                ServiceError::invalid("namespace_capability", format!("unknown {name:?}"))
            })?;
            let namespace = need_namespace()?;
            let allowed = caller.acl.allow_namespace(namespace, cap);
            (allowed, format!("{cap} in namespace {namespace:?}"))
        }
        Some(Check::OperatorCapability(name)) => {
            let cap = OperatorCapability::parse(name).ok_or_else(|| {
                ServiceError::invalid("operator_capability", format!("unknown {name:?}"))
            })?;
            (
                caller.acl.allow_operator(cap),
                format!("operator capability {cap}"),
            )
        }
        Some(Check::Variables(check)) => {
            let op = VariableOp::parse(&check.operation).ok_or_else(|| {
                let reason = format!("{:?} is not list, read, write or destroy", check.operation);
                ServiceError::invalid("variables.operation", reason)
            })?;
            if check.path.is_empty() {
                return Err(ServiceError::invalid("variables.path", "is required"));
            }
            let namespace = need_namespace()?;
            let allowed = caller.acl.allow_variable_op(namespace, &check.path, op);
            let what = format!(
                "{op} on variables {:?} in namespace {namespace:?}",
                check.path
            );
            (allowed, what)
        }
        None => {
            let reason = "set one of namespace_capability, operator_capability or variables";
            return Err(ServiceError::invalid("check", reason));
        }
    };
    let verdict = if allowed { "allows" } else { "does not allow" };
    Ok(pb::AuthorizeResponse {
        allowed,
        reason: format!("{} {verdict} {what}", caller.describe()),
    })
}

fn policy_to_proto(policy: &AclPolicy) -> pb::AclPolicy {
    pb::AclPolicy {
        name: policy.name.clone(),
        description: policy.description.clone(),
        rules: policy.rules.to_hcl(),
        job_acl: policy.job_acl.as_ref().map(|j| pb::JobAcl {
            namespace: j.namespace.clone(),
            job: j.job.clone().unwrap_or_default(),
            group: j.group.clone().unwrap_or_default(),
            task: j.task.clone().unwrap_or_default(),
        }),
    }
}

fn token_to_proto(token: &AclToken) -> pb::AclToken {
    pb::AclToken {
        accessor_id: token.accessor_id.to_string(),
        name: token.name.clone(),
        r#type: token.kind.as_str().into(),
        policies: token.policies.clone(),
        create_time_ms: token.create_time_ms,
    }
}

fn summary_to_proto(summary: &sigil_acl::AclSummary) -> pb::AclSummary {
    pb::AclSummary {
        management: summary.management,
        namespaces: summary
            .namespaces
            .iter()
            .map(|g| pb::NamespaceGrant {
                namespace: g.namespace.clone(),
                capabilities: g.capabilities.iter().map(|c| c.as_str().into()).collect(),
            })
            .collect(),
        variables: summary
            .variables
            .iter()
            .map(|g| pb::VariableGrant {
                namespace: g.namespace.clone(),
                path: g.path.clone(),
                capabilities: g.capabilities.iter().map(|c| c.as_str().into()).collect(),
            })
            .collect(),
        operator: summary.operator.iter().map(|c| c.as_str().into()).collect(),
        workload: summary.workload.as_ref().map(|w| pb::WorkloadGrant {
            namespace: w.namespace.clone(),
            variable_paths: w.variable_paths.clone(),
            variable_capabilities: w
                .variable_capabilities
                .iter()
                .map(|c| c.as_str().into())
                .collect(),
            service_read: w.service_read,
        }),
    }
}
