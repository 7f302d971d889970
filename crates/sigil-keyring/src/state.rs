//! The signing algorithm and the lifecycle state of a root key.
//!
//! `KeyState` decides which keys sign and which appear in the JWKS; the keyring rules, the JWKS
//! endpoint and the CLI's `keyring list` all read it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The algorithm a root key signs with. The 32 random bytes of the key are the Ed25519 seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// Ed25519 signatures, JOSE name `EdDSA`.
    #[serde(rename = "EdDSA")]
    EdDSA,
}

/// Where a root key is in its life. See the table in `design.md` section 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// The one key that signs new identities.
    Active,
    /// Published in the JWKS ahead of time; becomes active at its publish time.
    Prepublished,
    /// A former active key: verifies old tokens, signs nothing.
    Inactive,
    /// Data under this key is being re-encrypted with the active key; verifies, signs nothing.
    Rekeying,
    /// Withdrawn by an operator: leaves the JWKS, so its tokens stop verifying everywhere.
    Revoked,
}

impl Algorithm {
    /// The JOSE name, as written in a JWT header and a JWK.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::EdDSA => "EdDSA",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl KeyState {
    /// Every state, in lifecycle order.
    pub const ALL: [KeyState; 5] = [
        KeyState::Prepublished,
        KeyState::Active,
        KeyState::Inactive,
        KeyState::Rekeying,
        KeyState::Revoked,
    ];

    /// Whether the key's public half is served in the JWKS: every state but `Revoked`.
    pub fn in_jwks(self) -> bool {
        !matches!(self, KeyState::Revoked)
    }

    /// Whether the key signs new identities: `Active` only.
    pub fn signs(self) -> bool {
        matches!(self, KeyState::Active)
    }

    /// The lowercase name used by serde, Display and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Prepublished => "prepublished",
            KeyState::Inactive => "inactive",
            KeyState::Rekeying => "rekeying",
            KeyState::Revoked => "revoked",
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyState {
    type Err = String;

    fn from_str(s: &str) -> Result<KeyState, String> {
        KeyState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown key state {s:?}: expected one of active, prepublished, inactive, \
                 rekeying, revoked"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table in the design: only active signs, only revoked leaves the JWKS.
    #[test]
    fn only_active_signs_and_only_revoked_leaves_the_jwks() {
        for state in KeyState::ALL {
            assert_eq!(
                state.signs(),
                state == KeyState::Active,
                "{state} signs only if active"
            );
            assert_eq!(
                state.in_jwks(),
                state != KeyState::Revoked,
                "{state} is in the JWKS unless revoked"
            );
        }
    }

    /// Serde, Display and FromStr agree on one lowercase name per state.
    #[test]
    fn state_names_agree_across_serde_display_and_parse() {
        for state in KeyState::ALL {
            let json = serde_json::to_string(&state).expect("serializes");
            assert_eq!(
                json,
                format!("\"{state}\""),
                "serde uses the Display name for {state}"
            );
            assert_eq!(
                state.as_str().parse::<KeyState>(),
                Ok(state),
                "{state} parses back"
            );
        }

        let err = "retired"
            .parse::<KeyState>()
            .expect_err("unknown names are refused");
        assert!(
            err.contains("retired"),
            "the error names the bad input: {err}"
        );
    }

    /// Consul and Vault JWT configurations expect the JOSE spelling.
    #[test]
    fn algorithm_serializes_as_its_jose_name() {
        let json = serde_json::to_string(&Algorithm::EdDSA).expect("serializes");

        assert_eq!(json, "\"EdDSA\"", "the algorithm serializes as EdDSA");
        assert_eq!(
            Algorithm::EdDSA.to_string(),
            "EdDSA",
            "Display matches the JOSE name"
        );
    }
}
