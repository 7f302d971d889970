//! `KeyId`, the UUID that names a root key.
//!
//! It is the JWT `kid`, the keyring's map key and the associated data that binds a wrapped key to
//! its id. The state machine, the signer, the verifier and the CLI all pass it around.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::KeyringError;

/// The id of a root key: a UUID, always written in hyphenated lowercase form.
///
/// It serializes as that string in every serde format, binary ones included, so the `kid` in a
/// token, the id in a Raft entry and the id in a snapshot are the same text.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub Uuid);

/// The length of a hyphenated UUID, the only form `KeyId::from_str` accepts.
const HYPHENATED_LEN: usize = 36;

impl KeyId {
    /// A new random (v4) key id. Only the leader calls this; the id then travels in the entry.
    pub fn random() -> KeyId {
        KeyId(Uuid::new_v4())
    }

    /// The 16 raw bytes of the UUID, used as AEAD associated data when wrapping.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0.hyphenated())
    }
}

impl FromStr for KeyId {
    type Err = KeyringError;

    /// Accepts only the hyphenated form, so that one key has exactly one spelling as a `kid`.
    fn from_str(s: &str) -> Result<KeyId, KeyringError> {
        let invalid = |reason: String| KeyringError::InvalidKeyId {
            input: s.chars().take(64).collect(),
            reason,
        };

        if s.len() != HYPHENATED_LEN {
            return Err(invalid(format!(
                "{} characters, expected {HYPHENATED_LEN}",
                s.len()
            )));
        }
        Uuid::try_parse(s)
            .map(KeyId)
            .map_err(|e| invalid(e.to_string()))
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0.hyphenated())
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<KeyId, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "6f1c2d3e-4a5b-4c6d-8e7f-901234567890";

    /// Display and FromStr are inverse, so a `kid` read back from a token names the same key.
    #[test]
    fn display_and_parse_roundtrip_the_hyphenated_form() {
        let id: KeyId = SAMPLE.parse().expect("a hyphenated UUID parses");

        assert_eq!(
            id.to_string(),
            SAMPLE,
            "Display prints the hyphenated lowercase form"
        );
        assert_eq!(
            id.to_string().parse::<KeyId>(),
            Ok(id),
            "parsing the display form is lossless"
        );
    }

    /// Only one spelling is accepted, and the error names the input and says what was expected.
    #[test]
    fn parse_rejects_other_spellings_with_a_clear_error() {
        let simple = SAMPLE.replace('-', "");
        let err = simple
            .parse::<KeyId>()
            .expect_err("the simple form is refused");
        let message = err.to_string();

        assert!(
            message.contains(&simple),
            "the error names the input: {message}"
        );
        assert!(
            message.contains("hyphenated UUID"),
            "the error says what is expected: {message}"
        );

        let garbage = "zzzzzzzz-4a5b-4c6d-8e7f-901234567890";
        assert!(
            matches!(
                garbage.parse::<KeyId>(),
                Err(KeyringError::InvalidKeyId { .. })
            ),
            "non-hex characters of the right length are refused"
        );
    }

    /// Serde uses the string form, which JSON map keys (the keyring snapshot) require.
    #[test]
    fn serde_uses_the_string_form() {
        let id: KeyId = SAMPLE.parse().expect("valid id");

        let json = serde_json::to_string(&id).expect("serializes");
        assert_eq!(
            json,
            format!("\"{SAMPLE}\""),
            "a key id serializes as a JSON string"
        );

        let back: KeyId = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, id, "deserializing the string gives the same id");

        let bad = serde_json::from_str::<KeyId>("\"nope\"");
        assert!(
            bad.is_err(),
            "a non-UUID string does not deserialize into a key id"
        );
    }

    /// Random ids differ, so two leaders rotating at once do not collide.
    #[test]
    fn random_ids_are_distinct() {
        assert_ne!(
            KeyId::random(),
            KeyId::random(),
            "two random key ids differ"
        );
    }
}
