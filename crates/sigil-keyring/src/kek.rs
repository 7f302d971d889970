//! The key-encryption key (KEK) and the wrapped form of a root key.
//!
//! Each server loads its KEK from configuration; it is never replicated. The leader wraps new
//! root key material before proposing it, so Raft entries and snapshots hold only ciphertext, and
//! every server unwraps on apply. The state machine calls [`Kek::unwrap`]; the rotation path
//! calls [`Kek::wrap`].

use std::fmt;

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::material::fill_random;
use crate::{KeyId, KeyMaterial, KeyringError};

/// A 32-byte AES-256-GCM key that wraps root keys. Configured per server, never replicated.
///
/// Zeroed on drop and redacted in Debug. It has no public `zeroize()`, which would leave a value
/// whose cached fingerprint no longer matches its bytes.
#[derive(Clone, ZeroizeOnDrop)]
pub struct Kek {
    bytes: [u8; Kek::LEN],
    /// Cached because every wrap and unwrap compares it.
    #[zeroize(skip)]
    fingerprint: String,
}

/// A root key encrypted under a KEK, as it travels in Raft entries and snapshots.
///
/// `ciphertext` is the AES-256-GCM output: the 32 encrypted bytes followed by the 16-byte tag.
/// The key id is the associated data, so a wrapped key moved onto another id fails to unwrap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    /// The fingerprint of the KEK that wrapped this key (see [`Kek::fingerprint`]).
    pub kek_fingerprint: String,
    /// The 96-bit random nonce, base64 in serde.
    #[serde(with = "base64_bytes")]
    pub nonce: Vec<u8>,
    /// Ciphertext and tag, base64 in serde.
    #[serde(with = "base64_bytes")]
    pub ciphertext: Vec<u8>,
}

/// The AES-GCM nonce length in bytes.
const NONCE_LEN: usize = 12;

/// The AES-GCM tag length in bytes.
const TAG_LEN: usize = 16;

/// How many bytes of the KEK's SHA-256 make up its fingerprint.
const FINGERPRINT_BYTES: usize = 8;

impl Kek {
    /// The length of a KEK in bytes.
    pub const LEN: usize = 32;

    /// A fresh KEK from the OS CSPRNG, for `sigil dev` and for operators bootstrapping a cluster.
    ///
    /// # Panics
    ///
    /// If the OS random number generator fails; see [`KeyMaterial::generate`].
    pub fn generate() -> Kek {
        Kek::try_generate().expect("the OS random number generator failed")
    }

    /// A fresh KEK from the OS CSPRNG, or the reason there is none.
    pub fn try_generate() -> Result<Kek, KeyringError> {
        let mut bytes = Zeroizing::new([0; Kek::LEN]);
        fill_random(bytes.as_mut())?;
        Ok(Kek::from_bytes(*bytes))
    }

    /// A KEK from known bytes.
    pub fn from_bytes(bytes: [u8; Kek::LEN]) -> Kek {
        let fingerprint = fingerprint_of(&bytes);
        Kek { bytes, fingerprint }
    }

    /// Parse a KEK from standard base64, as written in a config file or environment variable.
    ///
    /// Surrounding whitespace (a trailing newline from `openssl rand -base64 32 > file`) is
    /// ignored. Errors never echo the value, since it is a secret even when it is malformed.
    pub fn from_base64(text: &str) -> Result<Kek, KeyringError> {
        let decoded = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| KeyringError::KekNotBase64)?,
        );

        let bytes: [u8; Kek::LEN] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| KeyringError::KekWrongLength { got: decoded.len() })?;
        Ok(Kek::from_bytes(bytes))
    }

    /// The KEK as standard base64, zeroed when dropped. Only for writing a config file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.bytes))
    }

    /// Hex of the first 8 bytes of SHA-256 of the KEK.
    ///
    /// Safe to log and to store beside wrapped keys: it tells an operator which KEK wrapped a key
    /// without revealing anything useful about the KEK itself.
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// Wrap root key material for `key_id` with a fresh random nonce.
    ///
    /// # Panics
    ///
    /// If the OS random number generator fails; see [`Kek::try_wrap`].
    pub fn wrap(&self, key_id: KeyId, material: &KeyMaterial) -> WrappedKey {
        self.try_wrap(key_id, material)
            .expect("the OS random number generator failed")
    }

    /// Wrap root key material for `key_id`, or say why no nonce could be drawn.
    pub fn try_wrap(
        &self,
        key_id: KeyId,
        material: &KeyMaterial,
    ) -> Result<WrappedKey, KeyringError> {
        let mut nonce = [0; NONCE_LEN];
        fill_random(&mut nonce)?;

        // Encrypt in place inside the output buffer, so the plaintext is never copied anywhere
        // that outlives this call in the clear.
        let mut ciphertext = Vec::with_capacity(KeyMaterial::LEN + TAG_LEN);
        ciphertext.extend_from_slice(material.as_bytes());
        let tag = self
            .cipher()
            .encrypt_inout_detached(
                &Nonce::from(nonce),
                key_id.as_bytes(),
                (&mut ciphertext[..]).into(),
            )
            .expect("AES-256-GCM encrypts any message shorter than 64 GiB");
        ciphertext.extend_from_slice(&tag);

        Ok(WrappedKey {
            kek_fingerprint: self.fingerprint(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Recover the material of `key_id` from its wrapped form.
    ///
    /// A key wrapped by another KEK is refused by fingerprint before any decryption, so the error
    /// says which KEK is needed instead of a bare authentication failure.
    pub fn unwrap(&self, key_id: KeyId, wrapped: &WrappedKey) -> Result<KeyMaterial, KeyringError> {
        if wrapped.kek_fingerprint != self.fingerprint {
            return Err(KeyringError::WrongKek {
                key_id,
                wrapped_by: wrapped.kek_fingerprint.clone(),
                have: self.fingerprint(),
            });
        }
        let malformed = |reason| KeyringError::MalformedWrappedKey { key_id, reason };
        let nonce: [u8; NONCE_LEN] = wrapped
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| malformed("nonce is not 12 bytes"))?;
        if wrapped.ciphertext.len() != KeyMaterial::LEN + TAG_LEN {
            return Err(malformed(
                "ciphertext is not 48 bytes (32-byte key and 16-byte tag)",
            ));
        }
        let (encrypted, tag) = wrapped.ciphertext.split_at(KeyMaterial::LEN);

        let mut material = KeyMaterial::from_bytes([0; KeyMaterial::LEN]);
        material.as_mut_bytes().copy_from_slice(encrypted);
        self.cipher()
            .decrypt_inout_detached(
                &Nonce::from(nonce),
                key_id.as_bytes(),
                (&mut material.as_mut_bytes()[..]).into(),
                &Tag::try_from(tag).map_err(|_| malformed("tag is not 16 bytes"))?,
            )
            .map_err(|_| KeyringError::UnwrapFailed { key_id })?;
        Ok(material)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.bytes.into())
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kek(fingerprint={}, redacted)", self.fingerprint)
    }
}

fn fingerprint_of(bytes: &[u8; Kek::LEN]) -> String {
    let digest = Sha256::digest(bytes);
    digest[..FINGERPRINT_BYTES]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Serde for byte vectors as standard base64 strings: compact in JSON snapshots and readable in
/// `keyring list -o json`.
mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn material() -> KeyMaterial {
        KeyMaterial::from_bytes(std::array::from_fn(|i| (i as u8).wrapping_mul(7)))
    }

    /// The basic contract: what one KEK wraps for an id, the same KEK unwraps for that id.
    #[test]
    fn unwrap_returns_exactly_what_wrap_was_given() {
        let kek = Kek::generate();
        let key_id = KeyId::random();

        let wrapped = kek.wrap(key_id, &material());
        let unwrapped = kek
            .unwrap(key_id, &wrapped)
            .expect("the wrapping KEK unwraps");

        assert_eq!(
            unwrapped.as_bytes(),
            material().as_bytes(),
            "unwrapped bytes are the original"
        );
        assert_eq!(
            wrapped.kek_fingerprint,
            kek.fingerprint(),
            "the wrap records the KEK"
        );
        assert_eq!(wrapped.nonce.len(), 12, "the nonce is 96 bits");
        assert_eq!(
            wrapped.ciphertext.len(),
            48,
            "ciphertext is 32 bytes plus a 16-byte tag"
        );
        assert_ne!(
            &wrapped.ciphertext[..32],
            material().as_bytes(),
            "the bytes are encrypted"
        );
    }

    /// Fresh nonces mean wrapping the same key twice never repeats a (key, nonce) pair.
    #[test]
    fn wrapping_twice_uses_fresh_nonces() {
        let kek = Kek::generate();
        let key_id = KeyId::random();

        let first = kek.wrap(key_id, &material());
        let second = kek.wrap(key_id, &material());

        assert_ne!(first.nonce, second.nonce, "each wrap draws a new nonce");
        assert_ne!(
            first.ciphertext, second.ciphertext,
            "so the ciphertexts differ"
        );
    }

    /// A server configured with another KEK is told which KEK it needs, not "decrypt failed".
    #[test]
    fn unwrap_with_another_kek_names_both_fingerprints() {
        let (right, wrong) = (Kek::generate(), Kek::generate());
        let key_id = KeyId::random();
        let wrapped = right.wrap(key_id, &material());

        let err = wrong
            .unwrap(key_id, &wrapped)
            .expect_err("another KEK cannot unwrap");

        let expected = KeyringError::WrongKek {
            key_id,
            wrapped_by: right.fingerprint(),
            have: wrong.fingerprint(),
        };
        assert_eq!(
            err, expected,
            "the error names the key and both fingerprints"
        );
    }

    /// Authenticated encryption: one flipped bit anywhere in the ciphertext or tag is caught.
    #[test]
    fn tampered_ciphertext_or_tag_fails_to_unwrap() {
        let kek = Kek::generate();
        let key_id = KeyId::random();
        let wrapped = kek.wrap(key_id, &material());

        for index in [0, 31, 32, 47] {
            let mut tampered = wrapped.clone();
            tampered.ciphertext[index] ^= 0x01;

            let result = kek.unwrap(key_id, &tampered);
            assert_eq!(
                result.err(),
                Some(KeyringError::UnwrapFailed { key_id }),
                "a flipped bit at byte {index} is detected"
            );
        }

        let mut tampered = wrapped.clone();
        tampered.nonce[0] ^= 0x01;
        assert_eq!(
            kek.unwrap(key_id, &tampered).err(),
            Some(KeyringError::UnwrapFailed { key_id }),
            "a changed nonce is detected"
        );
    }

    /// The key id is associated data: a wrapped key copied onto another id does not unwrap, so
    /// an entry cannot make key A's material sign under key B's `kid`.
    #[test]
    fn wrapped_key_swapped_onto_another_id_fails_to_unwrap() {
        let kek = Kek::generate();
        let (original, other) = (KeyId::random(), KeyId::random());
        let wrapped = kek.wrap(original, &material());

        assert_eq!(
            kek.unwrap(other, &wrapped).err(),
            Some(KeyringError::UnwrapFailed { key_id: other }),
            "unwrapping under a different key id fails"
        );
    }

    /// Truncated fields are reported as malformed, naming the field, instead of panicking.
    #[test]
    fn truncated_wrapped_key_is_reported_as_malformed() {
        let kek = Kek::generate();
        let key_id = KeyId::random();
        let wrapped = kek.wrap(key_id, &material());

        let mut short_nonce = wrapped.clone();
        short_nonce.nonce.pop();
        let err = kek
            .unwrap(key_id, &short_nonce)
            .expect_err("an 11-byte nonce is refused");
        assert!(
            err.to_string().contains("nonce"),
            "the error names the nonce: {err}"
        );

        let mut short_ciphertext = wrapped;
        short_ciphertext.ciphertext.truncate(40);
        let err = kek
            .unwrap(key_id, &short_ciphertext)
            .expect_err("a short ciphertext is refused");
        assert!(
            err.to_string().contains("ciphertext"),
            "the error names the ciphertext: {err}"
        );
    }

    /// Wrapped keys live in JSON snapshots and Raft entries, so serde must be lossless.
    #[test]
    fn wrapped_key_roundtrips_through_json_as_base64() {
        let kek = Kek::generate();
        let key_id = KeyId::random();
        let wrapped = kek.wrap(key_id, &material());

        let json = serde_json::to_value(&wrapped).expect("serializes");
        assert!(
            json["nonce"].is_string(),
            "the nonce is a base64 string in JSON"
        );
        assert!(
            json["ciphertext"].is_string(),
            "the ciphertext is a base64 string in JSON"
        );

        let back: WrappedKey = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back, wrapped, "the wrapped key survives a JSON roundtrip");
        let unwrapped = kek
            .unwrap(key_id, &back)
            .expect("the roundtripped key still unwraps");
        assert_eq!(
            unwrapped.as_bytes(),
            material().as_bytes(),
            "with the same material"
        );
    }

    /// Operators paste KEKs with trailing newlines; a KEK read back from its base64 is the same.
    #[test]
    fn kek_base64_roundtrips_and_ignores_surrounding_whitespace() {
        let kek = Kek::generate();

        let text = format!("  {}\n", kek.to_base64().as_str());
        let parsed = Kek::from_base64(&text).expect("base64 with whitespace parses");

        assert_eq!(
            parsed.fingerprint(),
            kek.fingerprint(),
            "it is the same KEK"
        );
    }

    /// A bad KEK gets an error that says what is wrong without echoing the secret.
    #[test]
    fn bad_kek_text_is_refused_with_a_clear_error() {
        let secretish = "not!base64!at!all";
        let err = Kek::from_base64(secretish).expect_err("non-base64 is refused");
        assert_eq!(
            err,
            KeyringError::KekNotBase64,
            "non-base64 text is reported as such"
        );
        assert!(
            !err.to_string().contains(secretish),
            "the value is not echoed: {err}"
        );

        let sixteen = STANDARD.encode([7u8; 16]);
        let err = Kek::from_base64(&sixteen).expect_err("16 bytes are refused");
        assert_eq!(
            err,
            KeyringError::KekWrongLength { got: 16 },
            "the length is reported"
        );
        assert!(
            err.to_string().contains("got 16"),
            "the message says what it got: {err}"
        );
    }

    /// The fingerprint is the first 8 bytes of SHA-256 in hex, and Debug shows only that.
    #[test]
    fn fingerprint_is_short_sha256_hex_and_debug_is_redacted() {
        let kek = Kek::from_bytes([0; 32]);

        // SHA-256 of 32 zero bytes begins 66687aadf862bd77.
        assert_eq!(
            kek.fingerprint(),
            "66687aadf862bd77",
            "fingerprint of the all-zero KEK"
        );
        assert_eq!(
            format!("{kek:?}"),
            "Kek(fingerprint=66687aadf862bd77, redacted)",
            "Debug shows the fingerprint and nothing else"
        );
        assert_ne!(
            Kek::from_bytes([1; 32]).fingerprint(),
            kek.fingerprint(),
            "different KEKs have different fingerprints"
        );
    }
}
