//! `Verifier`: checks Sigil tokens against a set of public keys, with time passed in.
//!
//! Every server keeps a `Verifier` built from the published keys of its applied keyring and
//! answers `IdentityService.Verify` with it; the CLI builds one from a fetched JWKS to verify
//! offline. [`peek_key_id`] lets a server see a token's `kid` before verifying, so that it can
//! wait for its applied index to catch up with the leader instead of rejecting a token signed by
//! a key that has not reached it yet.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::VerifyingKey;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use sigil_keyring::KeyId;

use crate::{IdentityClaims, VerifyError};

/// How far `exp` and `nbf` may be off the verifier's clock, in seconds, to absorb clock skew
/// between the signing leader, the verifying server and the workload. Matches jsonwebtoken's and
/// go-jose's defaults.
pub const CLOCK_LEEWAY_SECS: u64 = 60;

/// The longest token accepted. Sigil tokens are well under 1 KiB; the cap keeps a hostile caller
/// from making the server decode megabytes of base64.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// A set of public keys, each with its `jsonwebtoken` decoding key built once.
#[derive(Clone, Default)]
pub struct Verifier {
    keys: BTreeMap<KeyId, TrustedKey>,
}

#[derive(Clone)]
struct TrustedKey {
    verifying: VerifyingKey,
    decoding: DecodingKey,
}

/// The header fields Sigil reads. Others are ignored here; `jsonwebtoken` rejects `crit`.
#[derive(Deserialize)]
struct RawHeader {
    alg: Option<String>,
    kid: Option<String>,
}

/// A token split into its three base64url parts.
struct Parts<'a> {
    header: &'a str,
    signature: &'a str,
}

/// What jsonwebtoken itself checks: the algorithm and the signature only. Audience and issuer
/// are not checked, as in Nomad (the caller decides); `exp` and `nbf` are checked by
/// [`check_time`] against the injected clock, since jsonwebtoken would read the system clock.
static SIGNATURE_ONLY: LazyLock<Validation> = LazyLock::new(|| {
    let mut validation = Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    validation
});

/// Read a token's `kid` without verifying anything else.
///
/// Use this to decide whether to wait for a key to replicate; then call [`Verifier::verify`].
pub fn peek_key_id(token: &str) -> Result<KeyId, VerifyError> {
    let parts = split(token)?;
    let header = parse_header(parts.header)?;
    header_key_id(&header)
}

impl Verifier {
    /// An empty verifier that trusts no key.
    pub fn new() -> Verifier {
        Verifier::default()
    }

    /// A verifier that trusts exactly these keys.
    pub fn from_keys(keys: impl IntoIterator<Item = (KeyId, VerifyingKey)>) -> Verifier {
        let mut verifier = Verifier::new();
        for (key_id, key) in keys {
            verifier.insert(key_id, key);
        }
        verifier
    }

    /// Trust `key` for tokens whose `kid` is `key_id`, replacing any key under that id.
    pub fn insert(&mut self, key_id: KeyId, key: VerifyingKey) {
        // jsonwebtoken's Ed25519 "DER" constructor takes the raw 32-byte public key.
        let decoding = DecodingKey::from_ed_der(key.as_bytes());
        self.keys.insert(
            key_id,
            TrustedKey {
                verifying: key,
                decoding,
            },
        );
    }

    /// Stop trusting `key_id`. Returns whether it was trusted.
    pub fn remove(&mut self, key_id: &KeyId) -> bool {
        self.keys.remove(key_id).is_some()
    }

    /// Whether tokens signed by `key_id` can be verified.
    pub fn contains(&self, key_id: &KeyId) -> bool {
        self.keys.contains_key(key_id)
    }

    /// The trusted public key for `key_id`.
    pub fn verifying_key(&self, key_id: &KeyId) -> Option<VerifyingKey> {
        self.keys.get(key_id).map(|key| key.verifying)
    }

    /// Every trusted key, in key-id order (for building a JWKS).
    pub fn keys(&self) -> impl Iterator<Item = (KeyId, VerifyingKey)> + '_ {
        self.keys
            .iter()
            .map(|(key_id, key)| (*key_id, key.verifying))
    }

    /// How many keys are trusted.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verify `token` at `now_secs` and return its claims.
    ///
    /// Checks, in order: shape and size, header (`alg` must be `EdDSA`, `kid` must be present
    /// and trusted), signature, then `exp` and `nbf` with [`CLOCK_LEEWAY_SECS`] of leeway. It does
    /// not check `aud`, `iss`, or whether the allocation is still running: those are the
    /// caller's.
    pub fn verify(&self, token: &str, now_secs: u64) -> Result<IdentityClaims, VerifyError> {
        let parts = split(token)?;
        let header = parse_header(parts.header)?;
        match header.alg.as_deref() {
            Some("EdDSA") => {}
            Some(other) => return Err(VerifyError::UnsupportedAlgorithm(other.to_owned())),
            None => return Err(malformed("header has no alg")),
        }
        let key_id = header_key_id(&header)?;
        let key = self
            .keys
            .get(&key_id)
            .ok_or(VerifyError::UnknownKey(key_id))?;
        check_signature_encoding(parts.signature)?;

        let claims = jsonwebtoken::decode::<IdentityClaims>(token, &key.decoding, &SIGNATURE_ONLY)
            .map_err(|e| signature_error(e.into_kind()))?
            .claims;

        check_time(&claims, now_secs)?;
        Ok(claims)
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn malformed(what: &str) -> VerifyError {
    VerifyError::Malformed(what.to_owned())
}

fn split(token: &str) -> Result<Parts<'_>, VerifyError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(VerifyError::Malformed(format!(
            "token is {} bytes, longer than the {MAX_TOKEN_LEN}-byte limit",
            token.len()
        )));
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(header), Some(payload), Some(signature), None)
            if !header.is_empty() && !payload.is_empty() && !signature.is_empty() =>
        {
            Ok(Parts { header, signature })
        }
        _ => Err(malformed(
            "token is not three non-empty dot-separated parts (header.payload.signature)",
        )),
    }
}

fn parse_header(encoded: &str) -> Result<RawHeader, VerifyError> {
    let json = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| malformed("header is not base64url"))?;
    serde_json::from_slice(&json).map_err(|e| {
        VerifyError::Malformed(format!(
            "header is not a JSON object with string alg and kid: {e}"
        ))
    })
}

fn header_key_id(header: &RawHeader) -> Result<KeyId, VerifyError> {
    let kid = header.kid.as_deref().ok_or(VerifyError::MissingKeyId)?;
    kid.parse()
        .map_err(|_| malformed("header kid is not a hyphenated UUID"))
}

/// Reject a signature that is not 64 bytes of base64url up front, so that a base64 error from
/// jsonwebtoken can only concern the payload and is reported as such.
fn check_signature_encoding(encoded: &str) -> Result<(), VerifyError> {
    let mut signature = [0u8; 64];
    match URL_SAFE_NO_PAD.decode_slice(encoded, &mut signature) {
        Ok(64) => Ok(()),
        _ => Err(malformed("signature is not 64 bytes of base64url")),
    }
}

fn signature_error(kind: ErrorKind) -> VerifyError {
    match kind {
        ErrorKind::InvalidSignature => VerifyError::BadSignature,
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) => malformed("payload is not base64url JSON"),
        ErrorKind::Json(e) => {
            VerifyError::Malformed(format!("payload is not a Sigil claim set: {e}"))
        }
        ErrorKind::InvalidToken => malformed("header carries unsupported crit or b64 parameters"),
        other => VerifyError::Malformed(format!("token rejected by the JWS parser: {other:?}")),
    }
}

/// Check `exp` and `nbf` against the injected clock, allowing [`CLOCK_LEEWAY_SECS`] of skew.
fn check_time(claims: &IdentityClaims, now: u64) -> Result<(), VerifyError> {
    if let Some(exp) = claims.exp
        && now > exp.saturating_add(CLOCK_LEEWAY_SECS)
    {
        return Err(VerifyError::Expired { exp, now });
    }
    if claims.nbf > now.saturating_add(CLOCK_LEEWAY_SECS) {
        return Err(VerifyError::NotYetValid {
            nbf: claims.nbf,
            now,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SigningKey, Workload, WorkloadClaims};
    use ed25519_dalek::Signer;
    use sigil_keyring::KeyMaterial;
    use uuid::Uuid;

    const NOW: u64 = 1_700_000_000;
    const TTL: u64 = 3_600;

    fn kid() -> KeyId {
        KeyId(Uuid::from_u128(1))
    }

    fn signer() -> SigningKey {
        SigningKey::new(kid(), &KeyMaterial::from_bytes([5; 32]))
    }

    fn verifier() -> Verifier {
        Verifier::from_keys([(kid(), signer().verifying_key())])
    }

    fn claims(ttl_secs: Option<u64>) -> IdentityClaims {
        WorkloadClaims {
            region: "global".into(),
            namespace: "default".into(),
            job_id: "web".into(),
            parent_job_id: None,
            group: "web".into(),
            workload: Workload::Task("server".into()),
            identity_name: "vault_default".into(),
            audience: vec!["vault.io".into()],
            issuer: None,
            alloc_id: "alloc-1".into(),
            vault_role: None,
            vault_namespace: None,
            consul_namespace: None,
            ttl_secs,
        }
        .into_claims(NOW, Uuid::from_u128(7))
    }

    fn token(ttl_secs: Option<u64>) -> String {
        signer().sign(&claims(ttl_secs)).expect("signs").jwt
    }

    /// A compact JWS with any header and payload, validly signed by the test key, for checks
    /// that must get past the signature.
    fn forge(header: &str, payload: &str) -> String {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = key.sign(message.as_bytes());
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    fn header_for(kid: KeyId) -> String {
        format!(r#"{{"alg":"EdDSA","kid":"{kid}","typ":"JWT"}}"#)
    }

    /// Whether `result` is a `Malformed` error whose message names `part`.
    fn is_malformed_naming(result: Result<IdentityClaims, VerifyError>, part: &str) -> bool {
        matches!(result, Err(VerifyError::Malformed(message)) if message.contains(part))
    }

    fn parts(token: &str) -> Vec<String> {
        token.split('.').map(str::to_owned).collect()
    }

    /// Roundtrip: what the signer signs, the verifier accepts and decodes to the same claims.
    #[test]
    fn a_signed_token_verifies_and_yields_its_claims() {
        let verified = verifier()
            .verify(&token(Some(TTL)), NOW)
            .expect("a fresh token verifies");

        assert_eq!(
            verified,
            claims(Some(TTL)),
            "the verified claims are the signed claims"
        );
    }

    /// Changing the claims (one character, or a whole other claim set) breaks the signature.
    #[test]
    fn a_tampered_payload_is_rejected_as_a_bad_signature() {
        let original = parts(&token(Some(TTL)));

        let mut other = claims(Some(TTL));
        other.nomad_job_id = "admin".into();
        let swapped_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).expect("encodes"));
        let swapped = format!("{}.{}.{}", original[0], swapped_payload, original[2]);
        assert_eq!(
            verifier().verify(&swapped, NOW),
            Err(VerifyError::BadSignature),
            "another claim set under the original signature is rejected"
        );

        let mut flipped = original[1].clone().into_bytes();
        flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("still ASCII");
        let token = format!("{}.{}.{}", original[0], flipped, original[2]);
        assert_eq!(
            verifier().verify(&token, NOW),
            Err(VerifyError::BadSignature),
            "one changed payload character is rejected"
        );
    }

    /// Changing the signature breaks it; changing its last character breaks its encoding.
    #[test]
    fn a_tampered_signature_is_rejected() {
        let original = parts(&token(Some(TTL)));

        let mut signature = original[2].clone().into_bytes();
        signature[20] = if signature[20] == b'A' { b'B' } else { b'A' };
        let signature = String::from_utf8(signature).expect("still ASCII");
        let token = format!("{}.{}.{}", original[0], original[1], signature);
        assert_eq!(
            verifier().verify(&token, NOW),
            Err(VerifyError::BadSignature),
            "a changed signature byte is rejected"
        );

        let truncated = format!("{}.{}.{}", original[0], original[1], &original[2][..40]);
        assert!(
            is_malformed_naming(verifier().verify(&truncated, NOW), "signature"),
            "a truncated signature is malformed and the error names the signature"
        );
    }

    /// A token signed by another key but claiming a trusted `kid` is rejected.
    #[test]
    fn a_token_signed_by_another_key_under_a_trusted_kid_is_rejected() {
        let impostor = SigningKey::new(kid(), &KeyMaterial::from_bytes([6; 32]));
        let token = impostor.sign(&claims(Some(TTL))).expect("signs").jwt;

        assert_eq!(
            verifier().verify(&token, NOW),
            Err(VerifyError::BadSignature),
            "wrong key"
        );
    }

    /// An unknown `kid` is reported as such, naming the key, so the server can wait for it.
    #[test]
    fn a_token_with_an_unknown_kid_names_the_key() {
        let other = KeyId(Uuid::from_u128(2));
        let token = SigningKey::new(other, &KeyMaterial::from_bytes([5; 32]))
            .sign(&claims(Some(TTL)))
            .expect("signs")
            .jwt;

        assert_eq!(
            verifier().verify(&token, NOW),
            Err(VerifyError::UnknownKey(other)),
            "unknown"
        );
        assert_eq!(
            peek_key_id(&token),
            Ok(other),
            "peek reads the kid without the key"
        );
    }

    /// `exp` is enforced against the injected clock with exactly 60 s of leeway.
    #[test]
    fn expiry_is_checked_against_the_given_clock_with_sixty_seconds_of_leeway() {
        let token = token(Some(TTL));
        let exp = NOW + TTL;

        assert!(verifier().verify(&token, exp).is_ok(), "valid at exp");
        assert!(
            verifier().verify(&token, exp + 60).is_ok(),
            "valid within the leeway"
        );
        assert_eq!(
            verifier().verify(&token, exp + 61),
            Err(VerifyError::Expired { exp, now: exp + 61 }),
            "expired once past the leeway"
        );
    }

    /// `nbf` is enforced the same way, so a leader with a fast clock cannot mint future tokens.
    #[test]
    fn not_before_is_checked_against_the_given_clock_with_sixty_seconds_of_leeway() {
        let token = token(Some(TTL));

        assert!(
            verifier().verify(&token, NOW - 60).is_ok(),
            "valid within the leeway"
        );
        assert_eq!(
            verifier().verify(&token, NOW - 61),
            Err(VerifyError::NotYetValid {
                nbf: NOW,
                now: NOW - 61
            }),
            "not yet valid before the leeway"
        );
    }

    /// Default identities have no `exp`; time alone never invalidates them (allocation state
    /// does, which is the server's check).
    #[test]
    fn a_token_without_exp_never_expires_by_time() {
        let token = token(None);

        assert!(
            verifier().verify(&token, NOW + 10 * 365 * 86_400).is_ok(),
            "valid years later"
        );
    }

    /// `alg: none`, HMAC and RSA tokens are refused before any key is consulted.
    #[test]
    fn tokens_with_another_algorithm_are_refused() {
        for alg in ["none", "HS256", "RS256"] {
            let header = format!(r#"{{"alg":"{alg}","kid":"{}","typ":"JWT"}}"#, kid());
            let token = forge(&header, r#"{"sub":"x"}"#);

            assert_eq!(
                verifier().verify(&token, NOW),
                Err(VerifyError::UnsupportedAlgorithm(alg.into())),
                "alg {alg} is refused"
            );
        }
    }

    /// Header problems are reported precisely: no kid, a kid that is not a key id, no alg.
    #[test]
    fn header_problems_are_reported_precisely() {
        let payload = serde_json::to_string(&claims(None)).expect("encodes");

        let no_kid = forge(r#"{"alg":"EdDSA","typ":"JWT"}"#, &payload);
        assert_eq!(
            verifier().verify(&no_kid, NOW),
            Err(VerifyError::MissingKeyId),
            "no kid"
        );
        assert_eq!(
            peek_key_id(&no_kid),
            Err(VerifyError::MissingKeyId),
            "peek: no kid"
        );

        let bad_kid = forge(r#"{"alg":"EdDSA","kid":"key-1"}"#, &payload);
        assert!(
            is_malformed_naming(verifier().verify(&bad_kid, NOW), "kid"),
            "a non-UUID kid is malformed and named"
        );

        let no_alg = forge(&format!(r#"{{"kid":"{}"}}"#, kid()), &payload);
        assert!(
            is_malformed_naming(verifier().verify(&no_alg, NOW), "alg"),
            "a missing alg is malformed and named"
        );
    }

    /// Garbage never panics and each error names the part that is wrong.
    #[test]
    fn malformed_tokens_are_rejected_naming_the_broken_part() {
        let cases = [
            ("", "three"),
            ("abc", "three"),
            ("a.b", "three"),
            ("a.b.c.d", "three"),
            ("..", "three"),
            ("!!!.e30.AAAA", "header is not base64url"),
            (
                &*format!("{}.e30.AAAA", URL_SAFE_NO_PAD.encode("[1]")),
                "header is not a JSON",
            ),
        ];
        for (token, expected) in cases {
            match verifier().verify(token, NOW) {
                Err(VerifyError::Malformed(message)) => assert!(
                    message.contains(expected),
                    "token {token:?}: expected {expected:?} in {message:?}"
                ),
                other => panic!("token {token:?} should be malformed, got {other:?}"),
            }
        }

        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        assert!(
            is_malformed_naming(verifier().verify(&huge, NOW), "limit"),
            "an oversized token is refused before decoding"
        );
    }

    /// A correctly signed payload that is not a Sigil claim set is malformed, naming the payload.
    #[test]
    fn a_signed_payload_that_is_not_a_claim_set_is_malformed() {
        let token = forge(&header_for(kid()), r#"{"sub":"only-a-subject"}"#);

        let result = verifier().verify(&token, NOW);

        assert!(
            matches!(&result, Err(VerifyError::Malformed(m)) if m.contains("payload")),
            "the error names the payload: {result:?}"
        );
    }

    /// The key set can change as keys are published, removed and revoked.
    #[test]
    fn keys_can_be_added_and_removed() {
        let mut verifier = Verifier::new();
        let token = token(Some(TTL));

        assert_eq!(
            verifier.verify(&token, NOW),
            Err(VerifyError::UnknownKey(kid())),
            "empty"
        );
        verifier.insert(kid(), signer().verifying_key());
        assert!(
            verifier.contains(&kid()),
            "the key is trusted once inserted"
        );
        assert!(
            verifier.verify(&token, NOW).is_ok(),
            "and its tokens verify"
        );

        assert!(
            verifier.remove(&kid()),
            "removing a trusted key reports true"
        );
        assert!(!verifier.remove(&kid()), "removing it again reports false");
        assert_eq!(
            verifier.verify(&token, NOW),
            Err(VerifyError::UnknownKey(kid())),
            "removed"
        );
    }

    /// Verification runs on many request tasks at once.
    #[test]
    fn verifier_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}

        assert_send_sync::<Verifier>();
    }
}
