//! The claim set of a Sigil workload identity and the builder that fills it in.
//!
//! The leader's plan apply and identity renewal build a [`WorkloadClaims`] per task or service
//! and call [`WorkloadClaims::into_claims`] with the entry's time and a fresh `jti`; the signer
//! encodes the result, and the verifier decodes it. Claim names are Nomad's, so Consul and Vault
//! JWT auth configurations written for Nomad tokens work unchanged.

use serde::de::Deserializer;
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The `aud` claim: one audience serializes as a plain string, several as an array (as go-jose
/// does for Nomad); both forms deserialize.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Audience(pub Vec<String>);

/// The claims of a workload identity JWT. Optional claims are omitted when `None`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityClaims {
    /// `<region>:<namespace>:<job>:<group>:<task or service>:<identity name>`.
    pub sub: String,
    /// Who the token is for.
    pub aud: Audience,
    /// The configured issuer URL, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Signing time, unix seconds.
    pub iat: u64,
    /// Not valid before, unix seconds (the signing time).
    pub nbf: u64,
    /// Expiry, unix seconds; only for identities with a TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// A random UUID per signing.
    pub jti: String,
    /// The allocation's namespace.
    pub nomad_namespace: String,
    /// The job id, or the parent job id for periodic and dispatched children.
    pub nomad_job_id: String,
    /// The allocation id.
    pub nomad_allocation_id: String,
    /// The task, for task identities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nomad_task: Option<String>,
    /// The service, for service identities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nomad_service: Option<String>,
    /// The task's Vault role, when the job sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_role: Option<String>,
    /// The task's Vault namespace, when the job sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_namespace: Option<String>,
    /// The Consul namespace, when the job sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consul_namespace: Option<String>,
}

/// What an identity is issued to: a task, or a service (Consul service identities).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// A task, by name.
    Task(String),
    /// A service, by its (interpolated) name.
    Service(String),
}

/// Everything the leader knows about one identity to sign, before time and `jti` are chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadClaims {
    /// The cluster's region.
    pub region: String,
    /// The job's namespace.
    pub namespace: String,
    /// The job id.
    pub job_id: String,
    /// The parent job, for periodic and dispatched children; it replaces `job_id` in the claims.
    pub parent_job_id: Option<String>,
    /// The task group.
    pub group: String,
    /// The task or service the identity is for.
    pub workload: Workload,
    /// The identity block's name (`default` for the default identity).
    pub identity_name: String,
    /// The audience.
    pub audience: Vec<String>,
    /// The configured issuer URL, if any.
    pub issuer: Option<String>,
    /// The allocation id.
    pub alloc_id: String,
    /// The task's Vault role, if any.
    pub vault_role: Option<String>,
    /// The task's Vault namespace, if any.
    pub vault_namespace: Option<String>,
    /// The Consul namespace, if any.
    pub consul_namespace: Option<String>,
    /// The identity's TTL in seconds; `None` or zero means the token carries no `exp`.
    pub ttl_secs: Option<u64>,
}

impl Audience {
    /// Whether `audience` is one of the token's audiences.
    pub fn contains(&self, audience: &str) -> bool {
        self.0.iter().any(|a| a == audience)
    }
}

impl From<Vec<String>> for Audience {
    fn from(audiences: Vec<String>) -> Audience {
        Audience(audiences)
    }
}

impl From<&str> for Audience {
    fn from(audience: &str) -> Audience {
        Audience(vec![audience.to_owned()])
    }
}

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => serializer.serialize_str(one),
            many => many.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Audience, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }

        match OneOrMany::deserialize(deserializer)? {
            OneOrMany::One(one) => Ok(Audience(vec![one])),
            OneOrMany::Many(many) => Ok(Audience(many)),
        }
    }
}

impl Workload {
    /// The task or service name, as it appears in `sub`.
    pub fn name(&self) -> &str {
        match self {
            Workload::Task(name) | Workload::Service(name) => name,
        }
    }
}

impl WorkloadClaims {
    /// The claim set for a signing at `now_secs` with token id `jti`.
    ///
    /// Time and `jti` are arguments because they are chosen by the leader and carried in the Raft
    /// entry. Following Nomad, the parent job replaces the job id in both `sub` and
    /// `nomad_job_id`, so every child of a periodic or dispatch job gets the same policies; and a
    /// zero TTL means no `exp`, as for the default identity.
    pub fn into_claims(self, now_secs: u64, jti: Uuid) -> IdentityClaims {
        let job = self.parent_job_id.unwrap_or(self.job_id);
        let sub = format!(
            "{}:{}:{}:{}:{}:{}",
            self.region,
            self.namespace,
            job,
            self.group,
            self.workload.name(),
            self.identity_name
        );
        let (nomad_task, nomad_service) = match self.workload {
            Workload::Task(task) => (Some(task), None),
            Workload::Service(service) => (None, Some(service)),
        };

        IdentityClaims {
            sub,
            aud: Audience(self.audience),
            iss: self.issuer,
            iat: now_secs,
            nbf: now_secs,
            exp: self
                .ttl_secs
                .filter(|ttl| *ttl > 0)
                .map(|ttl| now_secs.saturating_add(ttl)),
            jti: jti.hyphenated().to_string(),
            nomad_namespace: self.namespace,
            nomad_job_id: job,
            nomad_allocation_id: self.alloc_id,
            nomad_task,
            nomad_service,
            vault_role: self.vault_role,
            vault_namespace: self.vault_namespace,
            consul_namespace: self.consul_namespace,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;
    const JTI: Uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);

    fn task_identity() -> WorkloadClaims {
        WorkloadClaims {
            region: "eu".into(),
            namespace: "default".into(),
            job_id: "cloudflared-ch".into(),
            parent_job_id: None,
            group: "cloudflared".into(),
            workload: Workload::Task("cloudflared".into()),
            identity_name: "default".into(),
            audience: vec!["nomadproject.io".into()],
            issuer: None,
            alloc_id: "5b0a1c7e-8f2d-4b9a-9c1e-3d4f5a6b7c8d".into(),
            vault_role: None,
            vault_namespace: None,
            consul_namespace: None,
            ttl_secs: None,
        }
    }

    /// The exact bytes a Vault or Consul JWT auth method sees for a default task identity: the
    /// `sub` from Nomad's documented example, a one-element `aud` as a plain string, no `exp`,
    /// no `iss`, and no empty optional claims.
    #[test]
    fn a_default_task_identity_encodes_to_the_exact_expected_json() {
        let claims = task_identity().into_claims(NOW, JTI);

        let json = serde_json::to_string(&claims).expect("claims encode");

        let expected = concat!(
            r#"{"sub":"eu:default:cloudflared-ch:cloudflared:cloudflared:default","#,
            r#""aud":"nomadproject.io","iat":1700000000,"nbf":1700000000,"#,
            r#""jti":"01234567-89ab-cdef-0123-456789abcdef","nomad_namespace":"default","#,
            r#""nomad_job_id":"cloudflared-ch","#,
            r#""nomad_allocation_id":"5b0a1c7e-8f2d-4b9a-9c1e-3d4f5a6b7c8d","#,
            r#""nomad_task":"cloudflared"}"#
        );
        assert_eq!(json, expected, "the claim JSON matches byte for byte");
    }

    /// A child of a periodic or dispatch job is named after its parent in `sub` and
    /// `nomad_job_id`, so policies attached to the parent apply.
    #[test]
    fn a_child_job_identity_names_the_parent_job() {
        let mut identity = task_identity();
        identity.job_id = "backup/periodic-1700000000".into();
        identity.parent_job_id = Some("backup".into());

        let claims = identity.into_claims(NOW, JTI);

        assert_eq!(
            claims.nomad_job_id, "backup",
            "nomad_job_id is the parent job"
        );
        assert_eq!(
            claims.sub, "eu:default:backup:cloudflared:cloudflared:default",
            "sub uses the parent job"
        );
    }

    /// Service identities carry `nomad_service` and no `nomad_task`, and name the service in
    /// `sub`.
    #[test]
    fn a_service_identity_sets_nomad_service_instead_of_nomad_task() {
        let mut identity = task_identity();
        identity.workload = Workload::Service("web-api".into());
        identity.identity_name = "consul-service_web-api-http".into();

        let claims = identity.into_claims(NOW, JTI);

        assert_eq!(
            claims.nomad_service.as_deref(),
            Some("web-api"),
            "nomad_service is set"
        );
        assert_eq!(claims.nomad_task, None, "nomad_task is absent for services");
        assert_eq!(
            claims.sub, "eu:default:cloudflared-ch:cloudflared:web-api:consul-service_web-api-http",
            "sub names the service and the identity"
        );
    }

    /// `exp` appears only for a positive TTL, at signing time plus the TTL.
    #[test]
    fn exp_is_set_only_for_a_positive_ttl() {
        let mut identity = task_identity();

        identity.ttl_secs = Some(3600);
        assert_eq!(
            identity.clone().into_claims(NOW, JTI).exp,
            Some(NOW + 3600),
            "now + ttl"
        );

        identity.ttl_secs = Some(0);
        assert_eq!(
            identity.clone().into_claims(NOW, JTI).exp,
            None,
            "a zero TTL means no exp"
        );

        identity.ttl_secs = None;
        assert_eq!(
            identity.into_claims(NOW, JTI).exp,
            None,
            "no TTL means no exp"
        );
    }

    /// Issuer, Vault and Consul claims pass through, and several audiences encode as an array.
    #[test]
    fn optional_claims_and_several_audiences_are_encoded() {
        let mut identity = task_identity();
        identity.identity_name = "vault_default".into();
        identity.audience = vec!["vault.io".into(), "sts.amazonaws.com".into()];
        identity.issuer = Some("https://sigil.example.com".into());
        identity.vault_role = Some("web".into());
        identity.vault_namespace = Some("team-a".into());
        identity.consul_namespace = Some("ns1".into());

        let value = serde_json::to_value(identity.into_claims(NOW, JTI)).expect("encodes");

        assert_eq!(
            value["aud"],
            serde_json::json!(["vault.io", "sts.amazonaws.com"]),
            "array"
        );
        assert_eq!(
            value["iss"], "https://sigil.example.com",
            "iss is the configured issuer"
        );
        assert_eq!(value["vault_role"], "web", "vault_role passes through");
        assert_eq!(
            value["vault_namespace"], "team-a",
            "vault_namespace passes through"
        );
        assert_eq!(
            value["consul_namespace"], "ns1",
            "consul_namespace passes through"
        );
    }

    /// Tokens from other issuers may use either `aud` form; both decode, and decoding is lossless.
    #[test]
    fn audience_decodes_from_a_string_or_an_array() {
        let one: Audience = serde_json::from_str(r#""a""#).expect("a string decodes");
        let many: Audience = serde_json::from_str(r#"["a","b"]"#).expect("an array decodes");

        assert_eq!(one, Audience::from("a"), "a string is one audience");
        assert_eq!(many.0, vec!["a", "b"], "an array keeps its order");
        assert!(
            many.contains("b") && !many.contains("c"),
            "contains checks membership"
        );
        assert!(
            serde_json::from_str::<Audience>("7").is_err(),
            "a number is not an audience"
        );
    }

    /// Claims decode back to the same value, which the verifier relies on.
    #[test]
    fn claims_roundtrip_through_json() {
        let mut identity = task_identity();
        identity.ttl_secs = Some(60);
        let claims = identity.into_claims(NOW, JTI);

        let json = serde_json::to_string(&claims).expect("encodes");
        let back: IdentityClaims = serde_json::from_str(&json).expect("decodes");

        assert_eq!(back, claims, "claims survive a JSON roundtrip");
    }
}
