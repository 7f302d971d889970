//! The OIDC discovery document (`/.well-known/openid-configuration`).
//!
//! Served by the HTTP endpoint when an issuer URL is configured, so that Vault, Consul or a cloud
//! provider can find the JWKS from the token's `iss` alone.

use serde::{Deserialize, Serialize};

/// The subset of OpenID Provider Metadata that JWT consumers read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcDiscovery {
    /// The issuer URL, exactly as configured and as written in `iss`.
    pub issuer: String,
    /// Where the JWKS is served.
    pub jwks_uri: String,
    /// Always `["EdDSA"]`.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// Always `["code"]`; required by the specification, unused by Sigil.
    pub response_types_supported: Vec<String>,
    /// Always `["public"]`.
    pub subject_types_supported: Vec<String>,
}

impl OidcDiscovery {
    /// The discovery document for `issuer`. The JWKS path is joined with exactly one slash,
    /// whether or not the issuer ends with one; the issuer itself is kept as given, since
    /// consumers compare it byte for byte with `iss`.
    pub fn new(issuer: &str) -> OidcDiscovery {
        OidcDiscovery {
            issuer: issuer.to_owned(),
            jwks_uri: format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')),
            id_token_signing_alg_values_supported: vec!["EdDSA".into()],
            response_types_supported: vec!["code".into()],
            subject_types_supported: vec!["public".into()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document has exactly the members consumers read, with Sigil's values.
    #[test]
    fn discovery_document_has_the_expected_members() {
        let value =
            serde_json::to_value(OidcDiscovery::new("https://sigil.example.com")).expect("encodes");

        let expected = serde_json::json!({
            "issuer": "https://sigil.example.com",
            "jwks_uri": "https://sigil.example.com/.well-known/jwks.json",
            "id_token_signing_alg_values_supported": ["EdDSA"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
        });
        assert_eq!(value, expected, "the discovery document matches");
    }

    /// A trailing slash on the issuer does not produce `//` in the JWKS URL.
    #[test]
    fn jwks_uri_never_has_a_double_slash() {
        let with_slash = OidcDiscovery::new("https://sigil.example.com/prefix/");
        let without = OidcDiscovery::new("https://sigil.example.com/prefix");

        assert_eq!(
            with_slash.jwks_uri, "https://sigil.example.com/prefix/.well-known/jwks.json",
            "one slash after a trailing-slash issuer"
        );
        assert_eq!(
            with_slash.jwks_uri, without.jwks_uri,
            "both spellings give the same URL"
        );
        assert_eq!(
            with_slash.issuer, "https://sigil.example.com/prefix/",
            "issuer kept as given"
        );
    }
}
