//! The JWKS document (`/.well-known/jwks.json`) and how long it may be cached.
//!
//! Every server serves one built from the published keys of its applied keyring, so servers at
//! the same applied index serve identical bytes; the CLI reads one back into a [`Verifier`] to
//! verify tokens offline.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sigil_keyring::KeyId;

use crate::{IdentityError, Verifier};

/// A JSON Web Key Set: the public keys that verify Sigil tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys, sorted by `kid`.
    pub keys: Vec<Jwk>,
}

/// One Ed25519 public key as an RFC 8037 JWK.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: always `OKP` (octet key pair).
    pub kty: String,
    /// Curve: always `Ed25519`.
    pub crv: String,
    /// The 32-byte public key, base64url without padding.
    pub x: String,
    /// The root key's id, matching the token's `kid`.
    pub kid: KeyId,
    /// Algorithm: always `EdDSA`.
    pub alg: String,
    /// Intended use: always `sig`.
    pub r#use: String,
}

/// The shortest `Cache-Control: max-age` the JWKS is served with, as in Nomad.
pub const JWKS_MIN_MAX_AGE: Duration = Duration::from_secs(15 * 60);

impl Jwks {
    /// A JWKS of these keys, sorted by `kid` so that equal key sets give identical documents.
    pub fn from_keys(keys: impl IntoIterator<Item = (KeyId, VerifyingKey)>) -> Jwks {
        let mut keys: Vec<Jwk> = keys
            .into_iter()
            .map(|(key_id, key)| Jwk::ed25519(key_id, &key))
            .collect();
        keys.sort_by_key(|jwk| jwk.kid);
        Jwks { keys }
    }

    /// A verifier trusting every key in the set, for offline verification.
    pub fn verifier(&self) -> Result<Verifier, IdentityError> {
        let keys = self
            .keys
            .iter()
            .map(|jwk| Ok((jwk.kid, jwk.verifying_key()?)));
        Ok(Verifier::from_keys(
            keys.collect::<Result<Vec<_>, IdentityError>>()?,
        ))
    }
}

impl Jwk {
    /// The JWK of an Ed25519 public key.
    pub fn ed25519(key_id: KeyId, key: &VerifyingKey) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(key.as_bytes()),
            kid: key_id,
            alg: "EdDSA".into(),
            r#use: "sig".into(),
        }
    }

    /// The public key this JWK describes, refusing anything but an Ed25519 signing key.
    pub fn verifying_key(&self) -> Result<VerifyingKey, IdentityError> {
        let invalid = |reason: String| IdentityError::InvalidJwk {
            kid: self.kid,
            reason,
        };
        let expect = |field: &str, value: &str, wanted: &str| {
            if value != wanted {
                return Err(invalid(format!(
                    "{field} is {value:?}, expected {wanted:?}"
                )));
            }
            Ok(())
        };
        expect("kty", &self.kty, "OKP")?;
        expect("crv", &self.crv, "Ed25519")?;
        expect("alg", &self.alg, "EdDSA")?;
        expect("use", &self.r#use, "sig")?;

        let bytes = URL_SAFE_NO_PAD
            .decode(&self.x)
            .map_err(|_| invalid("x is not base64url without padding".into()))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| invalid(format!("x is {} bytes, expected 32", b.len())))?;
        VerifyingKey::from_bytes(&bytes).map_err(|_| invalid("x is not an Ed25519 point".into()))
    }
}

/// How long a JWKS may be cached: half the time left until the newest key reaches the rotation
/// threshold, but never less than [`JWKS_MIN_MAX_AGE`].
///
/// By then a new key has been prepublished, so a verifier that re-fetches at that point sees it
/// before it signs anything. Nomad adds random jitter; this does not, so every server sends the
/// same header for the same state. Times are unix milliseconds; use whole seconds of the result
/// for `Cache-Control: max-age`.
pub fn jwks_max_age(
    newest_create_time_ms: u64,
    rotation_threshold_ms: u64,
    now_ms: u64,
) -> Duration {
    let rotate_at_ms = newest_create_time_ms.saturating_add(rotation_threshold_ms);
    let half_left = Duration::from_millis(rotate_at_ms.saturating_sub(now_ms) / 2);
    half_left.max(JWKS_MIN_MAX_AGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sigil_keyring::KeyMaterial;
    use uuid::Uuid;

    const HOUR_MS: u64 = 3_600_000;
    const DAY_MS: u64 = 24 * HOUR_MS;

    fn key(seed: u8) -> VerifyingKey {
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key()
    }

    fn id(n: u128) -> KeyId {
        KeyId(Uuid::from_u128(n))
    }

    /// The document has exactly the RFC 8037 members, with `use` spelled as JSON requires.
    #[test]
    fn jwk_has_exactly_the_okp_ed25519_members() {
        let jwks = Jwks::from_keys([(id(1), key(1))]);

        let value = serde_json::to_value(&jwks).expect("encodes");

        let expected = serde_json::json!({"keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(key(1).as_bytes()),
            "kid": "00000000-0000-0000-0000-000000000001",
            "alg": "EdDSA",
            "use": "sig",
        }]});
        assert_eq!(value, expected, "the JWKS has exactly these members");
        assert_eq!(
            jwks.keys[0].x.len(),
            43,
            "x is 32 bytes of unpadded base64url"
        );
    }

    /// Servers with the same keys serve byte-identical documents whatever order they hold them in.
    #[test]
    fn jwks_is_sorted_by_kid_for_a_stable_document() {
        let a = Jwks::from_keys([(id(3), key(3)), (id(1), key(1)), (id(2), key(2))]);
        let b = Jwks::from_keys([(id(2), key(2)), (id(3), key(3)), (id(1), key(1))]);

        let kids: Vec<KeyId> = a.keys.iter().map(|jwk| jwk.kid).collect();
        assert_eq!(kids, vec![id(1), id(2), id(3)], "keys are sorted by kid");
        assert_eq!(
            serde_json::to_string(&a).expect("encodes"),
            serde_json::to_string(&b).expect("encodes"),
            "the same key set gives the same bytes"
        );
    }

    /// A JWKS read back gives a verifier that accepts the signer's tokens.
    #[test]
    fn a_jwks_read_back_verifies_the_signers_tokens() {
        let signer = crate::SigningKey::new(id(1), &KeyMaterial::from_bytes([1; 32]));
        let claims = crate::IdentityClaims {
            sub: "s".into(),
            aud: "a".into(),
            iss: None,
            iat: 10,
            nbf: 10,
            exp: None,
            jti: "j".into(),
            nomad_namespace: "n".into(),
            nomad_job_id: "j".into(),
            nomad_allocation_id: "a".into(),
            nomad_task: None,
            nomad_service: None,
            vault_role: None,
            vault_namespace: None,
            consul_namespace: None,
        };
        let token = signer.sign(&claims).expect("signs").jwt;
        let json = serde_json::to_string(&Jwks::from_keys([(id(1), signer.verifying_key())]))
            .expect("encodes");

        let jwks: Jwks = serde_json::from_str(&json).expect("decodes");
        let verifier = jwks.verifier().expect("every JWK is usable");

        assert_eq!(
            verifier.verify(&token, 10),
            Ok(claims),
            "the token verifies offline"
        );
    }

    /// A JWK that is not an Ed25519 signing key is refused, naming the key and the field.
    #[test]
    fn unusable_jwks_are_refused_naming_the_field() {
        let good = Jwk::ed25519(id(1), &key(1));

        let mut rsa = good.clone();
        rsa.kty = "RSA".into();
        let err = rsa.verifying_key().expect_err("RSA is refused");
        assert!(
            err.to_string().contains("kty"),
            "the error names kty: {err}"
        );
        assert!(
            err.to_string().contains(&id(1).to_string()),
            "and the kid: {err}"
        );

        let mut short = good.clone();
        short.x = URL_SAFE_NO_PAD.encode([0u8; 31]);
        let err = short.verifying_key().expect_err("31 bytes are refused");
        assert!(
            err.to_string().contains("31 bytes"),
            "the error gives the length: {err}"
        );

        assert_eq!(
            good.verifying_key(),
            Ok(key(1)),
            "a good JWK gives back its key"
        );
    }

    /// Nomad's cache rule without jitter: half the time left until rotation, at least 15 min.
    #[test]
    fn jwks_max_age_is_half_the_time_to_rotation_with_a_fifteen_minute_floor() {
        let threshold = 30 * DAY_MS;

        assert_eq!(
            jwks_max_age(0, threshold, 0),
            Duration::from_millis(15 * DAY_MS),
            "a brand-new key may be cached for half the threshold"
        );
        assert_eq!(
            jwks_max_age(0, threshold, 20 * DAY_MS),
            Duration::from_millis(5 * DAY_MS),
            "ten days left gives five days"
        );
        assert_eq!(
            jwks_max_age(0, threshold, threshold - HOUR_MS),
            Duration::from_secs(30 * 60),
            "one hour left gives thirty minutes, above the floor"
        );
        assert_eq!(
            jwks_max_age(0, threshold, threshold - 20 * 60 * 1000),
            JWKS_MIN_MAX_AGE,
            "ten minutes (half of twenty left) is raised to the fifteen-minute floor"
        );
        assert_eq!(
            jwks_max_age(0, threshold, 40 * DAY_MS),
            JWKS_MIN_MAX_AGE,
            "past the threshold the floor applies"
        );
    }
}
