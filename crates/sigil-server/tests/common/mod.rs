//! Helpers shared by the end-to-end tests: submitting with retries the way a real client does,
//! and verifying tokens with an independent JWT library against a server's JWKS.

#![allow(dead_code)]

use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sigil_proto::v1::{SubmitPlanRequest, SubmitPlanResponse};
use sigil_testkit::{Cluster, eventually};
use sigil_types::NodeId;

/// Submits `plan` to server `id`, retrying `Unavailable` and `Aborted` (leader changes) with the
/// same plan id until it succeeds or the deadline passes.
pub async fn submit(cluster: &Cluster, id: NodeId, plan: &SubmitPlanRequest) -> SubmitPlanResponse {
    eventually(
        &format!("plan {} to commit via node {id}", plan.plan_id),
        Duration::from_secs(30),
        || async {
            let mut client = cluster.plans(id).await;
            let mut request = tonic::Request::new(plan.clone());
            request.set_timeout(Duration::from_secs(5));
            match client.submit(request).await {
                Ok(response) => Some(response.into_inner()),
                Err(status)
                    if matches!(
                        status.code(),
                        tonic::Code::Unavailable | tonic::Code::Aborted
                    ) =>
                {
                    None
                }
                Err(status) => panic!("plan {} failed: {status:?}", plan.plan_id),
            }
        },
    )
    .await
}

/// Verifies `token` with `jsonwebtoken` (not Sigil's verifier) against `jwks`, checking the
/// signature, the `kid`, the audience and the time claims; returns the claims.
pub fn verify_independently(token: &str, jwks: &serde_json::Value) -> serde_json::Value {
    let header = jsonwebtoken::decode_header(token).expect("the token has a JOSE header");
    assert_eq!(header.alg, Algorithm::EdDSA, "tokens are EdDSA");
    assert_eq!(header.typ.as_deref(), Some("JWT"), "typ is JWT");
    let kid = header.kid.expect("the token names its key");
    let set: JwkSet = serde_json::from_value(jwks.clone()).expect("the JWKS parses as a JWK set");
    let jwk = set
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} is in the JWKS {jwks}"));
    let key = DecodingKey::from_jwk(jwk).expect("the JWK is a usable Ed25519 key");

    let payload = token
        .split('.')
        .nth(1)
        .expect("a compact JWS has a payload");
    let raw: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .expect("the payload is base64url"),
    )
    .expect("the payload is JSON");
    let aud = match &raw["aud"] {
        serde_json::Value::String(a) => vec![a.clone()],
        serde_json::Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
        other => panic!("aud is a string or a list, not {other}"),
    };
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&aud);
    validation.set_required_spec_claims(&["sub", "aud"]);
    validation.validate_nbf = true;
    let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("the token verifies independently: {e}"));
    data.claims
}

/// The `kid` of a token.
pub fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("a JOSE header")
        .kid
        .expect("a kid")
}
