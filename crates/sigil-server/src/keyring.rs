//! `KeyringService` (list, rotate, remove; needing `keyring-read`, `keyring-rotate` and
//! `keyring-delete`) and the leader's keyring duties: creating the first
//! key, promoting prepublished keys when due, and prepublishing the next key on schedule.

use std::sync::Arc;
use std::time::Duration;

use sigil_acl::OperatorCapability;
use sigil_keyring::{Kek, KeyId, KeyMaterial, RootKey, RootKeyMeta};
use sigil_proto::v1::keyring_service_client::KeyringServiceClient;
use sigil_proto::v1::keyring_service_server::KeyringService;
use sigil_proto::v1::{
    ListKeysRequest, ListKeysResponse, RemoveKeyRequest, RemoveKeyResponse, RotateKeyRequest,
    RotateKeyResponse,
};
use sigil_types::{Command, CommandResponse};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::auth::authenticate;
use crate::convert;
use crate::ctx::{Ctx, Route, caller_deadline, now_ms};
use crate::error::{ServiceError, ServiceResult};

/// The keyring service of one server.
pub struct KeyringSvc {
    ctx: Arc<Ctx>,
    kek: Option<Arc<Kek>>,
}

impl KeyringSvc {
    /// The service over `ctx`; `kek` wraps the keys this server generates when it leads.
    pub fn new(ctx: Arc<Ctx>, kek: Option<Arc<Kek>>) -> Self {
        Self { ctx, kek }
    }
}

/// Generates a key, wraps it with the KEK and proposes it with `make(key)`.
///
/// The key material exists in plaintext only in this function and in the key cache; the entry
/// carries it wrapped (guarantee 5).
async fn propose_new_key(
    ctx: &Ctx,
    kek: Option<&Kek>,
    meta: RootKeyMeta,
    make: impl FnOnce(RootKey) -> Command,
    deadline: Duration,
) -> ServiceResult<(RootKeyMeta, u64)> {
    let kek = kek.ok_or_else(|| {
        ServiceError::FailedPrecondition(
            "this server has no KEK configured; it cannot create keys".into(),
        )
    })?;
    let key = RootKey::wrap(meta, kek, &KeyMaterial::generate());
    let (response, index) = ctx.propose(make(key), deadline).await?;
    match response {
        CommandResponse::Key(meta) => Ok((meta, index)),
        CommandResponse::Rejected(rejection) => Err(rejection.into()),
        other => Err(ServiceError::Internal(format!("key applied as {other:?}"))),
    }
}

#[tonic::async_trait]
impl KeyringService for KeyringSvc {
    async fn list(
        &self,
        request: Request<ListKeysRequest>,
    ) -> Result<Response<ListKeysResponse>, Status> {
        let caller = authenticate(&self.ctx, &request).await?;
        caller.require_operator(OperatorCapability::KeyringRead)?;

        let applied = self.ctx.state.read();
        let keys = applied
            .state
            .keyring()
            .metas()
            .iter()
            .map(convert::key_meta_to_proto)
            .collect();
        let applied_index = applied.last_applied.map_or(0, |id| id.index);
        Ok(Response::new(ListKeysResponse {
            keys,
            applied_index,
        }))
    }

    async fn rotate(
        &self,
        request: Request<RotateKeyRequest>,
    ) -> Result<Response<RotateKeyResponse>, Status> {
        let caller = authenticate(&self.ctx, &request).await?;
        caller.require_operator(OperatorCapability::KeyringRotate)?;
        let req = request.get_ref();
        if req.now == (req.prepublish_seconds > 0) {
            let reason = "set exactly one of `now` or `prepublish_seconds`";
            return Err(ServiceError::invalid("now", reason).into());
        }
        let request_id = (!req.request_id.is_empty()).then(|| req.request_id.clone());
        if let Some(id) = &request_id {
            check_request_id(id)?;
        }
        if let Route::Forward(channel) = self.ctx.route(&request)? {
            let call = |ch, req| async move { KeyringServiceClient::new(ch).rotate(req).await };
            return self.ctx.forward(channel, request, call).await;
        }

        // A retry of a rotation that already applied answers its key instead of rotating again.
        if let Some(id) = &request_id {
            let applied = self.ctx.state.read();
            let first = applied
                .state
                .rotation(id)
                .and_then(|k| applied.state.keyring().get(&k));
            if let Some(key) = first {
                return Ok(Response::new(RotateKeyResponse {
                    key: Some(convert::key_meta_to_proto(&key.meta)),
                    log_index: applied.last_applied.map_or(0, |l| l.index),
                }));
            }
        }

        let now = now_ms();
        let meta = if req.now {
            RootKeyMeta::new_active(KeyId::random(), now)
        } else {
            let publish = now.saturating_add(req.prepublish_seconds.saturating_mul(1000));
            RootKeyMeta::new_prepublished(KeyId::random(), now, publish)
        };
        let deadline = caller_deadline(&request);
        let make = |key| Command::RotateKey { key, request_id };
        let (meta, log_index) =
            propose_new_key(&self.ctx, self.kek.as_deref(), meta, make, deadline).await?;
        tracing::info!(key_id = %meta.key_id, state = %meta.state, log_index, "key rotated");
        Ok(Response::new(RotateKeyResponse {
            key: Some(convert::key_meta_to_proto(&meta)),
            log_index,
        }))
    }

    async fn remove(
        &self,
        request: Request<RemoveKeyRequest>,
    ) -> Result<Response<RemoveKeyResponse>, Status> {
        let caller = authenticate(&self.ctx, &request).await?;
        caller.require_operator(OperatorCapability::KeyringDelete)?;
        let req = request.get_ref();
        let key_id: KeyId = req.key_id.parse().map_err(|_| {
            ServiceError::invalid("key_id", format!("{:?} is not a key id", req.key_id))
        })?;
        let force = req.force;
        if let Route::Forward(channel) = self.ctx.route(&request)? {
            let call = |ch, req| async move { KeyringServiceClient::new(ch).remove(req).await };
            return self.ctx.forward(channel, request, call).await;
        }
        let deadline = caller_deadline(&request);
        let (response, log_index) = self
            .ctx
            .propose(Command::RemoveKey { key_id, force }, deadline)
            .await?;
        if let CommandResponse::Rejected(rejection) = response {
            return Err(ServiceError::from(rejection).into());
        }
        tracing::info!(%key_id, force, log_index, "key removed");
        Ok(Response::new(RemoveKeyResponse { log_index }))
    }
}

/// The leader's periodic keyring work. Runs on every server; acts only while leading, so after
/// a failover the new leader resumes from the replicated state.
pub async fn run_duties(ctx: Arc<Ctx>, kek: Option<Arc<Kek>>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let was_leader = ctx.is_leader();
        if was_leader && let Err(err) = leader_duties(&ctx, kek.as_deref()).await {
            tracing::warn!(error = %err, "keyring duty failed; will retry");
        }
        // Sleep one interval, but wake at once when this server gains or loses leadership:
        // a new cluster needs its first key as soon as it has a leader.
        let interval = ctx.config.keyring.check_interval;
        let wait = ctx.raft.wait(Some(interval));
        let role_change = wait.metrics(
            |m| (m.state == openraft::ServerState::Leader) != was_leader,
            "leadership change",
        );
        tokio::select! {
            _ = role_change => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn leader_duties(ctx: &Ctx, kek: Option<&Kek>) -> ServiceResult<()> {
    // Read our own term's state first: a new leader may not have applied its predecessor's
    // last entries yet, and must not create a key the keyring already has.
    ctx.raft
        .ensure_linearizable(openraft::ReadPolicy::ReadIndex)
        .await
        .map_err(|e| ServiceError::unavailable(format!("not leading: {e}")))?;

    let now = now_ms();
    let (has_active, due, prepublish) = {
        let applied = ctx.state.read();
        let keyring = applied.state.keyring();
        let threshold = ctx.config.keyring.rotation_threshold.as_millis() as u64;
        (
            keyring.active().is_some(),
            keyring.due_for_promotion(now),
            keyring.prepublish_due(now, threshold),
        )
    };
    let deadline = Duration::from_secs(10);

    if !has_active && due.is_none() {
        let meta = RootKeyMeta::new_active(KeyId::random(), now);
        let make = |key| Command::InitKeyring { key };
        let (meta, index) = propose_new_key(ctx, kek, meta, make, deadline).await?;
        tracing::info!(key_id = %meta.key_id, log_index = index, "keyring initialized");
        return Ok(());
    }
    if let Some(key_id) = due {
        let (response, index) = ctx
            .propose(Command::PromoteKey { key_id }, deadline)
            .await?;
        if let CommandResponse::Rejected(rejection) = response {
            return Err(rejection.into());
        }
        tracing::info!(%key_id, log_index = index, "prepublished key activated");
        return Ok(());
    }
    if let Some(publish_time_ms) = prepublish {
        let meta = RootKeyMeta::new_prepublished(KeyId::random(), now, publish_time_ms);
        let make = |key| Command::RotateKey {
            key,
            request_id: None,
        };
        let (meta, index) = propose_new_key(ctx, kek, meta, make, deadline).await?;
        tracing::info!(key_id = %meta.key_id, publish_time_ms, log_index = index, "next key prepublished");
    }
    Ok(())
}

fn check_request_id(id: &str) -> ServiceResult<()> {
    let ok = id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if ok {
        return Ok(());
    }
    let reason = "must be at most 128 letters, digits, '-', '_', '.' or ':'";
    Err(ServiceError::invalid("request_id", reason))
}
