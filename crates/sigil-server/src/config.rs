//! A server's configuration: the TOML file `sigil agent --config` reads, with defaults that suit
//! a three-node cluster on one network.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sigil_types::NodeId;

/// One server's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// This server's id in the Raft membership; stable for the server's life.
    pub node_id: NodeId,
    /// Where the Raft log and state live. Losing it loses this server's copy of the cluster.
    pub data_dir: PathBuf,
    /// `host:port` the gRPC server listens on (public API and Raft transport).
    #[serde(default = "default_grpc_addr")]
    pub grpc_addr: String,
    /// `host:port` the HTTP server listens on (JWKS, OIDC discovery, health).
    #[serde(default = "default_http_addr")]
    pub http_addr: String,
    /// The gRPC address other servers and clients use; defaults to `grpc_addr`.
    #[serde(default)]
    pub advertise_grpc: Option<String>,
    /// The HTTP address others use; defaults to `http_addr`.
    #[serde(default)]
    pub advertise_http: Option<String>,
    /// The initial voters, this server included. The server with the lowest id initializes the
    /// cluster once every listed peer answers; a cluster is initialized exactly once.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// File holding the base64 KEK (`sigil operator kek generate`). `SIGIL_KEK` overrides it.
    #[serde(default)]
    pub kek_file: Option<PathBuf>,
    /// The region in every identity's `sub` claim.
    #[serde(default = "default_region")]
    pub region: String,
    /// The `iss` claim and the OIDC discovery issuer; discovery is off when unset.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The audience of identities whose block names none. Nomad's value by default, so that
    /// Consul and Vault auth methods configured for Nomad accept Sigil's tokens.
    #[serde(default = "default_audience")]
    pub default_audience: String,
    /// Key rotation settings.
    #[serde(default)]
    pub keyring: KeyringConfig,
    /// Raft timing.
    #[serde(default)]
    pub raft: RaftConfig,
    /// Access control.
    #[serde(default)]
    pub acl: AclConfig,
}

/// Access control. On by default: a server that forgets the setting refuses unauthenticated
/// calls rather than letting anyone submit plans and mint identities.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AclConfig {
    /// Whether every gRPC call (except identity verification) must carry a token that allows
    /// it. Off only for development and for tests that are not about ACLs: with it off, any
    /// caller may do anything and the ACL service refuses every call.
    pub enabled: bool,
}

/// A voter of the initial membership.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The peer's node id.
    pub id: NodeId,
    /// The peer's advertised gRPC address.
    pub addr: String,
    /// The peer's advertised HTTP address.
    #[serde(default)]
    pub http_addr: String,
}

/// Key rotation. Longer thresholds mean fewer keys to publish; shorter ones bound how long a
/// leaked key signs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyringConfig {
    /// Maximum age of the active key; its successor is prepublished at half of it.
    #[serde(with = "humantime_serde_compat")]
    pub rotation_threshold: Duration,
    /// How often the leader checks for due promotions and rotations.
    #[serde(with = "humantime_serde_compat")]
    pub check_interval: Duration,
}

/// Raft timing. Shorter timeouts fail over faster but risk needless elections on a slow
/// network; the election timeout should be several heartbeats.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftConfig {
    /// Leader heartbeat interval.
    #[serde(with = "humantime_serde_compat")]
    pub heartbeat_interval: Duration,
    /// Lower bound of the randomized election timeout.
    #[serde(with = "humantime_serde_compat")]
    pub election_timeout_min: Duration,
    /// Upper bound of the randomized election timeout.
    #[serde(with = "humantime_serde_compat")]
    pub election_timeout_max: Duration,
    /// Build a snapshot (and purge the log behind it) after this many applied entries.
    pub snapshot_after_entries: u64,
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has an unknown or mistyped field.
    #[error("config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the line and field.
        message: String,
    },
    /// A value is out of range.
    #[error("config field {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl ServerConfig {
    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// A configuration with defaults for everything but identity and storage.
    pub fn new(node_id: NodeId, data_dir: PathBuf) -> Self {
        Self {
            node_id,
            data_dir,
            grpc_addr: default_grpc_addr(),
            http_addr: default_http_addr(),
            advertise_grpc: None,
            advertise_http: None,
            peers: Vec::new(),
            kek_file: None,
            region: default_region(),
            issuer: None,
            default_audience: default_audience(),
            keyring: KeyringConfig::default(),
            raft: RaftConfig::default(),
            acl: AclConfig::default(),
        }
    }

    /// Checks the values serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: &str| {
            Err(ConfigError::Invalid {
                field,
                reason: reason.into(),
            })
        };
        if !self.peers.is_empty() && !self.peers.iter().any(|p| p.id == self.node_id) {
            return invalid("peers", "the peer list must include this server's node_id");
        }
        let mut ids: Vec<_> = self.peers.iter().map(|p| p.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return invalid("peers", "two peers share an id");
        }
        if self.region.is_empty() || self.region.contains(':') {
            return invalid("region", "must be non-empty and contain no ':'");
        }
        if self.default_audience.trim().is_empty() {
            return invalid("default_audience", "must not be empty");
        }
        let raft = &self.raft;
        if raft.election_timeout_min <= raft.heartbeat_interval * 2 {
            return invalid(
                "raft.election_timeout_min",
                "must exceed two heartbeat intervals",
            );
        }
        if raft.election_timeout_max <= raft.election_timeout_min {
            return invalid(
                "raft.election_timeout_max",
                "must exceed election_timeout_min",
            );
        }
        if self.keyring.rotation_threshold < Duration::from_secs(60) {
            return invalid("keyring.rotation_threshold", "must be at least one minute");
        }
        Ok(())
    }
}

impl Default for KeyringConfig {
    fn default() -> Self {
        Self {
            rotation_threshold: Duration::from_secs(30 * 24 * 3600),
            check_interval: Duration::from_secs(10),
        }
    }
}

impl Default for AclConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

impl Default for RaftConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_millis(100),
            election_timeout_min: Duration::from_millis(500),
            election_timeout_max: Duration::from_millis(1000),
            snapshot_after_entries: 5_000,
        }
    }
}

fn default_grpc_addr() -> String {
    "127.0.0.1:7400".into()
}

fn default_http_addr() -> String {
    "127.0.0.1:7480".into()
}

fn default_region() -> String {
    "global".into()
}

fn default_audience() -> String {
    "nomadproject.io".into()
}

/// Durations in the config file are strings such as `"30d"`, `"10s"` or `"150ms"`.
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_config_file_parses_with_durations() {
        let config: ServerConfig = toml::from_str(
            r#"
            node_id = 2
            data_dir = "/var/lib/sigil"
            peers = [{ id = 1, addr = "a:7400" }, { id = 2, addr = "b:7400" }]
            [keyring]
            rotation_threshold = "7d"
            [raft]
            heartbeat_interval = "50ms"
            "#,
        )
        .expect("the config parses");
        assert_eq!(
            config.keyring.rotation_threshold,
            Duration::from_secs(7 * 24 * 3600)
        );
        assert_eq!(config.raft.heartbeat_interval, Duration::from_millis(50));
        assert!(
            config.acl.enabled,
            "ACLs are on unless the file turns them off"
        );
        assert!(config.validate().is_ok(), "the config is valid");
    }

    #[test]
    fn acls_are_turned_off_only_by_saying_so() {
        let config: ServerConfig =
            toml::from_str("node_id = 1\ndata_dir = \"d\"\n[acl]\nenabled = false\n")
                .expect("the config parses");
        assert!(!config.acl.enabled, "acl.enabled = false turns ACLs off");
        let config = ServerConfig::new(1, "d".into());
        assert!(config.acl.enabled, "a config built in code has ACLs on");
    }

    #[test]
    fn unknown_fields_and_bad_values_are_named() {
        let err = toml::from_str::<ServerConfig>("node_id = 1\ndata_dir = \"d\"\nnode = 3\n")
            .expect_err("unknown field");
        assert!(
            err.to_string().contains("node"),
            "the error names the field: {err}"
        );

        let mut config = ServerConfig::new(1, "d".into());
        config.peers = vec![PeerConfig {
            id: 2,
            addr: "x:1".into(),
            http_addr: String::new(),
        }];
        let err = config.validate().expect_err("self missing from peers");
        assert!(
            err.to_string().contains("peers"),
            "the error names the field: {err}"
        );
    }
}
