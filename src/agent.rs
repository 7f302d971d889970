//! The wiring behind `sigil agent`: resolve one server's configuration (file, overridden by
//! `SIGIL_*` environment variables, overridden by flags), load its KEK, bind its listeners, run
//! it until SIGINT or SIGTERM and shut it down cleanly. `cli/agent.rs` parses the flags and calls
//! [`resolve`], [`load_kek`] and [`run`]; `sigil dev` reuses [`shutdown_signal`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sigil_keyring::{Kek, Zeroizing};
use sigil_server::{Ctx, PeerConfig, ServerConfig, health_of};
use tokio::net::TcpListener;

/// The environment variable holding the base64 KEK; it wins over `kek_file`.
pub const KEK_ENV: &str = "SIGIL_KEK";

/// How long the agent waits for readiness before it warns about what is missing.
const READY_WARNING_AFTER: Duration = Duration::from_secs(30);

/// Settings that override the config file. The command line parser has already merged flags
/// over their `SIGIL_*` environment variables, so one value here is the winner of both.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--node-id` / `SIGIL_NODE_ID`.
    pub node_id: Option<u64>,
    /// `--data-dir` / `SIGIL_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--grpc-addr` / `SIGIL_GRPC_ADDR`.
    pub grpc_addr: Option<String>,
    /// `--http-addr` / `SIGIL_HTTP_ADDR`.
    pub http_addr: Option<String>,
    /// `--advertise-grpc` / `SIGIL_ADVERTISE_GRPC`.
    pub advertise_grpc: Option<String>,
    /// `--advertise-http` / `SIGIL_ADVERTISE_HTTP`.
    pub advertise_http: Option<String>,
    /// `--peer` / `SIGIL_PEERS`; when non-empty it replaces the file's whole peer list.
    pub peers: Vec<PeerConfig>,
}

/// The configuration from `file` (optional) with `overrides` applied, validated.
///
/// Overrides are applied to the parsed TOML before it is typed, so a required field (such as
/// `node_id`) may come from the environment or a flag alone, and every value goes through the
/// same checks whatever its source.
pub fn resolve(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<ServerConfig> {
    let source = file.map_or_else(
        || "flags and environment".to_owned(),
        |p| p.display().to_string(),
    );
    let mut table = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config {}", path.display()))?;
            toml::from_str::<toml::Table>(&text)
                .with_context(|| format!("config {}", path.display()))?
        }
        None => toml::Table::new(),
    };
    apply(&mut table, overrides)?;

    let config: ServerConfig = toml::Value::Table(table).try_into().map_err(|e| {
        let hint = "; set it in the config file, a SIGIL_* variable or a flag";
        let missing = e.to_string().contains("missing field");
        anyhow::anyhow!(
            "config ({source}): {}{}",
            e.to_string().trim_end(),
            if missing { hint } else { "" }
        )
    })?;
    config
        .validate()
        .with_context(|| format!("config ({source})"))?;
    Ok(config)
}

fn apply(table: &mut toml::Table, overrides: &Overrides) -> anyhow::Result<()> {
    use toml::Value;

    if let Some(id) = overrides.node_id {
        let id = i64::try_from(id).context("node_id: must be at most 2^63 - 1")?;
        table.insert("node_id".into(), Value::Integer(id));
    }
    if let Some(path) = &overrides.data_dir {
        let text = path.to_str().context("data_dir: the path is not UTF-8")?;
        table.insert("data_dir".into(), Value::String(text.to_owned()));
    }
    let strings = [
        ("grpc_addr", &overrides.grpc_addr),
        ("http_addr", &overrides.http_addr),
        ("advertise_grpc", &overrides.advertise_grpc),
        ("advertise_http", &overrides.advertise_http),
    ];
    for (key, value) in strings {
        if let Some(text) = value {
            table.insert(key.into(), Value::String(text.clone()));
        }
    }
    if !overrides.peers.is_empty() {
        let peers = overrides
            .peers
            .iter()
            .map(|p| {
                let id = i64::try_from(p.id).context("peer id: must be at most 2^63 - 1")?;
                let mut peer = toml::Table::new();
                peer.insert("id".into(), Value::Integer(id));
                peer.insert("addr".into(), Value::String(p.addr.clone()));
                peer.insert("http_addr".into(), Value::String(p.http_addr.clone()));
                Ok(Value::Table(peer))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        table.insert("peers".into(), Value::Array(peers));
    }
    Ok(())
}

/// The KEK from `SIGIL_KEK`, else from the config's `kek_file`, else none.
pub fn load_kek(config: &ServerConfig) -> anyhow::Result<Option<Kek>> {
    let from_env = match std::env::var(KEK_ENV) {
        Ok(text) => Some(Zeroizing::new(text)),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => bail!("{KEK_ENV}: not valid UTF-8 base64"),
    };
    kek_from(from_env, config.kek_file.as_deref())
}

/// The KEK from the environment's value when given (it wins), else from `file`.
fn kek_from(env: Option<Zeroizing<String>>, file: Option<&Path>) -> anyhow::Result<Option<Kek>> {
    if let Some(text) = env {
        if text.trim().is_empty() {
            bail!("{KEK_ENV}: set but empty; unset it or give a base64 KEK");
        }
        return Kek::from_base64(&text).map(Some).context(KEK_ENV);
    }
    let Some(path) = file else {
        return Ok(None);
    };
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("kek_file {}: cannot read", path.display()))?,
    );
    warn_if_readable_by_others(path);
    Kek::from_base64(&text)
        .map(Some)
        .with_context(|| format!("kek_file {}", path.display()))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;

    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            kek_file = %path.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "the KEK file is accessible to other users; chmod 600 it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// Runs one server on `config` until SIGINT or SIGTERM, then shuts it down.
pub async fn run(config: ServerConfig, kek: Option<Kek>) -> anyhow::Result<()> {
    match &kek {
        Some(kek) => tracing::info!(kek_fingerprint = %kek.fingerprint(), "KEK loaded"),
        None => tracing::warn!(
            "NO KEK CONFIGURED: this server cannot unwrap root keys, so it will report not \
             ready once the cluster has keys, and cannot create keys when it leads. Set \
             {KEK_ENV} or kek_file (generate one with `sigil operator kek generate`)"
        ),
    }
    if !config.acl.enabled {
        tracing::warn!(
            "ACLS DISABLED (acl.enabled = false): anyone who reaches the gRPC port may submit \
             plans, mint identities and change the keyring. Use this only for development"
        );
    }
    tracing::info!(
        node_id = config.node_id,
        data_dir = %config.data_dir.display(),
        peers = ?config.peers.iter().map(|p| (p.id, p.addr.as_str())).collect::<Vec<_>>(),
        acl_enabled = config.acl.enabled,
        "starting agent"
    );
    let grpc = bind("grpc_addr", &config.grpc_addr).await?;
    let http = bind("http_addr", &config.http_addr).await?;
    let server = sigil_server::start(config, kek, grpc, http)
        .await
        .context("the server did not start")?;
    let watcher = tokio::spawn(report_readiness(server.ctx.clone()));

    let signal = shutdown_signal().await?;
    tracing::info!(signal, "shutting down; a second signal exits at once");
    watcher.abort();
    tokio::select! {
        () = server.shutdown() => Ok(()),
        second = shutdown_signal() => {
            second?;
            bail!("interrupted again during shutdown; exiting without a clean stop")
        }
    }
}

async fn bind(field: &str, addr: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("{field} {addr}: cannot listen"))
}

/// Logs once when the server becomes ready, and warns once, naming what is missing, when it is
/// still not ready after a while: an operator tailing the log sees why a node stays out.
async fn report_readiness(ctx: Arc<Ctx>) {
    let started = Instant::now();
    let mut warned = false;
    loop {
        let health = health_of(&ctx);
        if health.ready {
            tracing::info!(
                node_id = health.node_id, role = %health.role, leader_id = health.leader_id,
                keys = health.keys, "server ready"
            );
            return;
        }
        if !warned && started.elapsed() > READY_WARNING_AFTER {
            warned = true;
            tracing::warn!(node_id = health.node_id, problems = ?health.problems, "not ready yet");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits for SIGINT or SIGTERM and names the one that came.
pub async fn shutdown_signal() -> anyhow::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};

        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.map(|()| "SIGINT").context("SIGINT"),
            _ = term.recv() => Ok("SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("cannot watch Ctrl-C")?;
        Ok("Ctrl-C")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write test file");
        path
    }

    #[test]
    fn overrides_win_over_the_file_and_the_rest_of_the_file_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(
            dir.path(),
            "sigil.toml",
            "node_id = 1\ndata_dir = \"/from/file\"\nregion = \"eu\"\n\
             peers = [{ id = 1, addr = \"a:1\" }]\n",
        );
        let overrides = Overrides {
            node_id: Some(2),
            data_dir: Some("/from/flag".into()),
            peers: vec![
                PeerConfig {
                    id: 2,
                    addr: "b:2".into(),
                    http_addr: "b:3".into(),
                },
                PeerConfig {
                    id: 3,
                    addr: "c:2".into(),
                    http_addr: String::new(),
                },
            ],
            ..Overrides::default()
        };
        let config = resolve(Some(&file), &overrides).expect("the config resolves");
        assert_eq!(config.node_id, 2, "the flag wins over the file");
        assert_eq!(
            config.data_dir,
            Path::new("/from/flag"),
            "the flag wins over the file"
        );
        assert_eq!(
            config.region, "eu",
            "fields without overrides come from the file"
        );
        assert_eq!(
            config.peers, overrides.peers,
            "flag peers replace the file's list"
        );
    }

    #[test]
    fn a_config_without_a_file_needs_node_id_and_says_where_to_set_it() {
        let err = resolve(None, &Overrides::default()).expect_err("no node id anywhere");
        let text = format!("{err:#}");
        assert!(
            text.contains("node_id"),
            "the error names the field: {text}"
        );
        assert!(
            text.contains("SIGIL_"),
            "the error says where to set it: {text}"
        );

        let overrides = Overrides {
            node_id: Some(1),
            data_dir: Some("d".into()),
            ..Overrides::default()
        };
        let config = resolve(None, &overrides).expect("flags alone suffice");
        assert_eq!(config.grpc_addr, "127.0.0.1:7400", "defaults fill the rest");
    }

    #[test]
    fn bad_files_and_bad_values_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let typo = write(
            dir.path(),
            "typo.toml",
            "node_id = 1\ndata_dir = \"d\"\nregoin = \"x\"\n",
        );
        let text = format!(
            "{:#}",
            resolve(Some(&typo), &Overrides::default()).unwrap_err()
        );
        assert!(text.contains("regoin"), "an unknown field is named: {text}");

        let invalid = write(
            dir.path(),
            "bad.toml",
            "node_id = 1\ndata_dir = \"d\"\nregion = \"\"\n",
        );
        let text = format!(
            "{:#}",
            resolve(Some(&invalid), &Overrides::default()).unwrap_err()
        );
        assert!(text.contains("region"), "an invalid value is named: {text}");

        let missing = dir.path().join("absent.toml");
        let text = format!(
            "{:#}",
            resolve(Some(&missing), &Overrides::default()).unwrap_err()
        );
        assert!(
            text.contains("absent.toml"),
            "an unreadable file is named: {text}"
        );
    }

    #[test]
    fn the_example_config_in_deploy_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/sigil.example.toml");
        let config = resolve(Some(&path), &Overrides::default()).expect("the example is valid");
        assert_eq!(config.node_id, 1, "the example is node 1");
        assert_eq!(config.peers.len(), 3, "of three");
        assert_eq!(
            config.kek_file.as_deref(),
            Some(Path::new("/etc/sigil/kek")),
            "the KEK file path is read"
        );
        assert!(config.acl.enabled, "the example documents ACLs on");
    }

    #[test]
    fn acls_are_on_unless_the_file_turns_them_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = "node_id = 1\ndata_dir = \"d\"\n";
        let default = write(dir.path(), "default.toml", base);
        let config = resolve(Some(&default), &Overrides::default()).expect("valid");
        assert!(config.acl.enabled, "without an [acl] block, ACLs are on");

        let off = write(
            dir.path(),
            "off.toml",
            &format!("{base}\n[acl]\nenabled = false\n"),
        );
        let config = resolve(Some(&off), &Overrides::default()).expect("valid");
        assert!(!config.acl.enabled, "[acl] enabled = false turns them off");

        let typo = write(
            dir.path(),
            "typo.toml",
            &format!("{base}\n[acl]\nenable = false\n"),
        );
        let text = format!(
            "{:#}",
            resolve(Some(&typo), &Overrides::default()).unwrap_err()
        );
        assert!(
            text.contains("enable"),
            "a misspelt ACL field is named: {text}"
        );
    }

    #[test]
    fn the_environment_kek_wins_over_the_file_and_bad_keks_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file_kek = Kek::generate();
        let env_kek = Kek::generate();
        let file = write(
            dir.path(),
            "kek",
            &format!("{}\n", file_kek.to_base64().as_str()),
        );

        let from_file = kek_from(None, Some(&file))
            .expect("file KEK loads")
            .expect("some KEK");
        assert_eq!(
            from_file.fingerprint(),
            file_kek.fingerprint(),
            "the file KEK is used"
        );

        let env = Some(Zeroizing::new(env_kek.to_base64().to_string()));
        let from_env = kek_from(env, Some(&file))
            .expect("env KEK loads")
            .expect("some KEK");
        assert_eq!(
            from_env.fingerprint(),
            env_kek.fingerprint(),
            "SIGIL_KEK wins"
        );

        assert!(
            kek_from(None, None).expect("no KEK is allowed").is_none(),
            "neither env nor file: no KEK, and no error"
        );

        let bad = Some(Zeroizing::new("not base64!".to_owned()));
        let text = format!("{:#}", kek_from(bad, None).unwrap_err());
        assert!(text.starts_with(KEK_ENV), "the source is named: {text}");
        assert!(
            !text.contains("not base64!"),
            "the secret is not echoed: {text}"
        );
    }
}
