//! Interoperability: Sigil tokens and JWKS work with an independent JWT implementation.
//!
//! Vault, Consul and cloud providers never run Sigil's verifier; they read the JWKS and check
//! tokens with their own JOSE code. These tests play that part with `jsonwebtoken`'s own JWK
//! parsing and signature path, and check the reverse direction too.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;
use sigil_identity::{IdentityClaims, Jwks, SigningKey, Verifier, Workload, WorkloadClaims};
use sigil_keyring::{KeyId, KeyMaterial};
use uuid::Uuid;

const NOW: u64 = 1_700_000_000;
const SEED: [u8; 32] = [42; 32];

fn kid() -> KeyId {
    KeyId(Uuid::from_u128(0xfeed))
}

fn claims() -> IdentityClaims {
    WorkloadClaims {
        region: "global".into(),
        namespace: "prod".into(),
        job_id: "payments".into(),
        parent_job_id: None,
        group: "api".into(),
        workload: Workload::Task("server".into()),
        identity_name: "vault_default".into(),
        audience: vec!["vault.io".into()],
        issuer: Some("https://sigil.example.com".into()),
        alloc_id: "alloc-9".into(),
        vault_role: Some("payments".into()),
        vault_namespace: None,
        consul_namespace: None,
        ttl_secs: Some(3600),
    }
    .into_claims(NOW, Uuid::from_u128(3))
}

/// What an external verifier does: parse the published JWKS with its own JWK code, pick the key
/// by the token's `kid`, and check the signature; then the claims are the ones Sigil signed.
#[test]
fn a_sigil_token_verifies_with_an_independent_jwt_library_using_the_published_jwks() {
    let signer = SigningKey::new(kid(), &KeyMaterial::from_bytes(SEED));
    let token = signer.sign(&claims()).expect("signs").jwt;
    let jwks_json = serde_json::to_string(&Jwks::from_keys([(kid(), signer.verifying_key())]))
        .expect("the JWKS encodes");

    let set: JwkSet = serde_json::from_str(&jwks_json).expect("jsonwebtoken parses the JWKS");
    let header = jsonwebtoken::decode_header(&token).expect("jsonwebtoken parses the header");
    let kid = header.kid.expect("the header has a kid");
    let jwk = set.find(&kid).expect("the token's kid is in the JWKS");
    let key = DecodingKey::from_jwk(jwk).expect("the JWK is a usable key");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.validate_exp = false;
    validation.set_audience(&["vault.io"]);
    validation.set_issuer(&["https://sigil.example.com"]);
    let decoded = jsonwebtoken::decode::<Value>(&token, &key, &validation)
        .expect("the independent library accepts the signature, audience and issuer");

    assert_eq!(
        header.alg,
        Algorithm::EdDSA,
        "the independent parser reads alg EdDSA"
    );
    assert_eq!(
        decoded.claims,
        serde_json::to_value(claims()).expect("encodes"),
        "the independent library decodes exactly the signed claims"
    );
}

/// The same path must reject a token signed by a different key under the same `kid`.
#[test]
fn the_independent_library_rejects_a_token_from_another_key() {
    let published = SigningKey::new(kid(), &KeyMaterial::from_bytes(SEED));
    let impostor = SigningKey::new(kid(), &KeyMaterial::from_bytes([7; 32]));
    let token = impostor.sign(&claims()).expect("signs").jwt;
    let jwks = Jwks::from_keys([(kid(), published.verifying_key())]);
    let set: JwkSet =
        serde_json::from_str(&serde_json::to_string(&jwks).expect("encodes")).expect("parses");

    let key = DecodingKey::from_jwk(&set.keys[0]).expect("usable key");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.validate_exp = false;
    validation.validate_aud = false;
    let result = jsonwebtoken::decode::<Value>(&token, &key, &validation);

    assert!(
        matches!(
            result.as_ref().map_err(|e| e.kind()),
            Err(jsonwebtoken::errors::ErrorKind::InvalidSignature)
        ),
        "the impostor's signature is rejected: {result:?}"
    );
}

/// The reverse direction: a token minted by jsonwebtoken with the same seed (its header fields
/// in another order) verifies with Sigil's verifier, so Sigil does not depend on its own byte
/// layout to verify.
#[test]
fn a_token_signed_by_an_independent_library_verifies_with_sigils_verifier() {
    // PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410): fixed 16-byte prefix, then the seed.
    let mut pkcs8 = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    pkcs8.extend_from_slice(&SEED);
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid().to_string());
    let token =
        jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_ed_der(&pkcs8)).expect("signs");

    let public = SigningKey::new(kid(), &KeyMaterial::from_bytes(SEED)).verifying_key();
    let verified = Verifier::from_keys([(kid(), public)]).verify(&token, NOW);

    assert_eq!(
        verified,
        Ok(claims()),
        "Sigil verifies the independently signed token"
    );
}
