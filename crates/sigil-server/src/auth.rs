//! Who is calling, and what they may do: every service handler starts here.
//!
//! [`authenticate`] turns the `authorization: Bearer <token>` metadata into a [`Caller`]: an
//! ACL token (looked up by the SHA-256 of its secret) or a workload identity JWT (verified, then
//! resolved to the policies associated with its allocation). Handlers then call the
//! `require_*` checks. A missing, malformed or unknown token is `Unauthenticated`; a known one
//! that lacks the grant is `PermissionDenied`.
//!
//! A follower authenticates and authorizes before it forwards, so bad calls stop at the first
//! server; the leader's handler does both again from the forwarded metadata and never trusts
//! the follower's decision.
//!
//! A leader authorizes against the state it has applied. A leader elected a moment ago may not
//! yet have applied its predecessor's last committed entries (a deleted token, a narrowed
//! policy), so until it has applied an entry of its own term it catches up first; in practice
//! that happens once per term, and costs nothing afterwards.

use std::fmt;
use std::time::Duration;

use sigil_acl::{Acl, NamespaceCapability, OperatorCapability, WorkloadScope, workload_policies};
use sigil_state::SigilState;
use sigil_types::{AclToken, SecretHash, TokenKind};
use tonic::Request;

use crate::ctx::Ctx;
use crate::error::{ServiceError, ServiceResult};
use crate::identity::{Verified, verify_token};

/// How long a server waits to catch up with the leader before it calls a secret unknown.
const CATCH_UP_DEADLINE: Duration = Duration::from_secs(3);

/// A token secret: a random UUID, shown to its creator once. Its `Debug` is redacted.
pub struct SecretId(String);

/// An authenticated caller and its compiled ACL.
pub struct Caller {
    /// Who the caller is.
    pub identity: CallerIdentity,
    /// What it may do.
    pub acl: Acl,
    /// The names of the policies that make up `acl` (empty for management and when disabled).
    pub policies: Vec<String>,
}

/// The kinds of caller.
pub enum CallerIdentity {
    /// ACLs are disabled on this server: every caller may do everything.
    AclsDisabled,
    /// An ACL token.
    Token(AclToken),
    /// A workload identity of a live allocation.
    Workload(Box<Verified>),
}

impl SecretId {
    /// A fresh secret; only the leader draws one, right before proposing its hash.
    pub fn generate() -> SecretId {
        SecretId(uuid::Uuid::new_v4().to_string())
    }

    /// The hash that the state stores and looks up.
    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.0)
    }

    /// The plaintext, for the one answer that hands it to the creator.
    pub fn expose(self) -> String {
        self.0
    }
}

impl fmt::Debug for SecretId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretId(redacted)")
    }
}

/// Authenticates the caller of `request` on this server.
pub async fn authenticate<T>(ctx: &Ctx, request: &Request<T>) -> ServiceResult<Caller> {
    let caller = identify(ctx, request).await;
    if let Err(ServiceError::Unauthenticated(reason)) = &caller {
        // The reason names what was wrong with the token, never the token itself.
        tracing::warn!(node_id = ctx.id, reason = %reason, "unauthenticated call refused");
    }
    caller
}

async fn identify<T>(ctx: &Ctx, request: &Request<T>) -> ServiceResult<Caller> {
    if !ctx.config.acl.enabled {
        return Ok(Caller {
            identity: CallerIdentity::AclsDisabled,
            acl: Acl::management(),
            policies: Vec::new(),
        });
    }
    let bearer = bearer_token(request)?;
    settle_new_leader(ctx).await?;
    if looks_like_jwt(bearer) {
        let verified = verify_token(ctx, bearer).await?;
        return Ok(workload_caller(&ctx.state.read().state, verified));
    }
    // Secrets are UUIDs; anything else is refused without hashing it or asking the leader.
    if uuid::Uuid::parse_str(bearer).is_err() {
        return Err(ServiceError::Unauthenticated(
            "the token is neither a secret id (a UUID) nor a workload identity JWT".into(),
        ));
    }
    let hash = SecretHash::of(bearer);
    let mut token = find_token(ctx, &hash);
    if token.is_none() {
        // The token may have been created a moment ago and not be applied here yet.
        ctx.catch_up(CATCH_UP_DEADLINE).await?;
        token = find_token(ctx, &hash);
    }
    let token = token.ok_or_else(|| {
        ServiceError::Unauthenticated("the token is not a known ACL token secret".into())
    })?;
    Ok(token_caller(&ctx.state.read().state, token))
}

impl Caller {
    /// Requires `cap` in `namespace`.
    pub fn require_namespace(
        &self,
        namespace: &str,
        cap: NamespaceCapability,
    ) -> ServiceResult<()> {
        if self.acl.allow_namespace(namespace, cap) {
            return Ok(());
        }
        Err(self.denied(&format!("{cap} in namespace {namespace:?}")))
    }

    /// Requires operator capability `cap`.
    pub fn require_operator(&self, cap: OperatorCapability) -> ServiceResult<()> {
        if self.acl.allow_operator(cap) {
            return Ok(());
        }
        Err(self.denied(&format!("operator capability {cap}")))
    }

    /// Requires a management token (or ACLs disabled).
    pub fn require_management(&self) -> ServiceResult<()> {
        if self.acl.is_management() {
            return Ok(());
        }
        Err(self.denied("a management token"))
    }

    /// The caller for logs: an accessor id or an allocation, never a secret.
    pub fn describe(&self) -> String {
        match &self.identity {
            CallerIdentity::AclsDisabled => "anyone (ACLs disabled)".into(),
            CallerIdentity::Token(token) => format!("token {}", token.accessor_id),
            CallerIdentity::Workload(verified) => format!(
                "workload {:?} of allocation {}",
                verified.claims.sub, verified.alloc.id
            ),
        }
    }

    fn denied(&self, needed: &str) -> ServiceError {
        let who = self.describe();
        tracing::warn!(caller = %who, needed, "permission denied");
        ServiceError::PermissionDenied(format!("{who} is not allowed: needs {needed}"))
    }
}

/// The scope a verified workload identity's policies are matched against. Namespace, job and
/// group come from the allocation, never from the token's claims.
pub fn workload_scope(verified: &Verified) -> WorkloadScope {
    WorkloadScope {
        namespace: verified.alloc.namespace.clone(),
        job: verified.alloc.identity_job_id().to_owned(),
        group: verified.alloc.group.clone(),
        task: verified.claims.nomad_task.clone(),
    }
}

/// The caller a verified workload identity is: the implicit grants plus every policy
/// associated with its namespace, job, group and task. No association means no privileges.
pub fn workload_caller(state: &SigilState, verified: Verified) -> Caller {
    let scope = workload_scope(&verified);
    let attached: Vec<_> = state
        .acl_policies()
        .filter(|policy| policy.applies_to(&scope))
        .collect();
    let rules = workload_policies(attached.iter().copied(), &scope);
    Caller {
        acl: Acl::for_workload(&rules, &scope),
        policies: attached.iter().map(|p| p.name.clone()).collect(),
        identity: CallerIdentity::Workload(Box::new(verified)),
    }
}

fn token_caller(state: &SigilState, token: AclToken) -> Caller {
    if token.kind == TokenKind::Management {
        return Caller {
            identity: CallerIdentity::Token(token),
            acl: Acl::management(),
            policies: Vec::new(),
        };
    }
    // Policies deleted since the token was created are skipped, as Nomad does; a client
    // token whose policies are all gone allows nothing.
    let policies: Vec<_> = token
        .policies
        .iter()
        .filter_map(|name| state.acl_policy(name))
        .collect();
    let rules: Vec<_> = policies.iter().map(|p| &p.rules).collect();
    Caller {
        acl: Acl::compile(&rules),
        policies: policies.iter().map(|p| p.name.clone()).collect(),
        identity: CallerIdentity::Token(token),
    }
}

/// On a leader that has not yet applied an entry of its own term, waits until it has applied
/// everything committed before its term began.
async fn settle_new_leader(ctx: &Ctx) -> ServiceResult<()> {
    if !ctx.is_leader() {
        return Ok(());
    }
    let term = ctx.term();
    let applied_term = ctx.state.read().last_applied.map(|l| l.leader_id.term);
    if applied_term == Some(term) {
        return Ok(());
    }
    ctx.catch_up(CATCH_UP_DEADLINE).await
}

fn find_token(ctx: &Ctx, hash: &SecretHash) -> Option<AclToken> {
    ctx.state.read().state.acl_token_by_hash(hash).cloned()
}

/// The token of `authorization: Bearer <token>`.
fn bearer_token<T>(request: &Request<T>) -> ServiceResult<&str> {
    let missing = || {
        ServiceError::Unauthenticated(
            "no token: send `authorization: Bearer <secret id or workload identity>`".into(),
        )
    };
    let value = request
        .metadata()
        .get("authorization")
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| ServiceError::Unauthenticated("authorization is not ASCII".into()))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ServiceError::Unauthenticated(
            "authorization must be `Bearer <token>`".into(),
        ));
    }
    Ok(token)
}

/// A compact JWS has three dot-separated parts; a secret id is a UUID and has no dot.
fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(authorization: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(value) = authorization {
            let value = value.parse().expect("ASCII metadata");
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    #[test]
    fn bearer_tokens_are_read_and_anything_else_is_unauthenticated() {
        let ok = request(Some("Bearer abc"));
        assert_eq!(
            bearer_token(&ok).ok(),
            Some("abc"),
            "the token after Bearer"
        );
        let lower = request(Some("bearer abc"));
        assert_eq!(
            bearer_token(&lower).ok(),
            Some("abc"),
            "the scheme is case-insensitive"
        );
        for bad in [None, Some("abc"), Some("Basic abc"), Some("Bearer  ")] {
            let err = bearer_token(&request(bad)).expect_err("refused");
            assert!(
                matches!(err, ServiceError::Unauthenticated(_)),
                "{bad:?} is unauthenticated, got {err:?}"
            );
        }
    }

    #[test]
    fn a_secret_id_is_told_apart_from_a_jwt_and_never_printed() {
        assert!(
            uuid::Uuid::parse_str(&SecretId::generate().0).is_ok(),
            "a secret is a UUID, as authenticate expects"
        );
        let secret = SecretId::generate();
        assert!(!looks_like_jwt(&secret.0), "a UUID secret is not a JWT");
        assert!(looks_like_jwt("eyJh.eyJz.c2ln"), "three parts are a JWT");
        let shown = format!("{secret:?}");
        assert!(
            !shown.contains(&secret.0),
            "Debug hides the secret: {shown}"
        );
    }
}
