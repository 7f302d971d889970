//! Process-level ACLs through the `sigil` binary alone: `sigil dev` bootstraps its cluster and
//! prints the management token, and the `sigil acl` commands, run as a user would, write a
//! policy, create a client token, ask what it allows, see it enforced and revoke it.
//!
//! Everything runs on 127.0.0.1 with ports `sigil dev` lets the OS pick. Every wait has a
//! deadline; the dev process is killed when the test ends, and its data directory lives in the
//! test's temporary directory.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Instant;

use common::{DEADLINE, run_sigil};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A `sigil dev` process and what its banner said.
/// Dropping it kills the process, then removes the directory; a failing test prints the log.
struct Dev {
    child: Child,
    dir: tempfile::TempDir,
    /// `SIGIL_ADDR` from the banner.
    addresses: String,
    /// `SIGIL_TOKEN` from the banner: the management token's secret.
    management: String,
}

impl Dev {
    /// Starts a one-server `sigil dev` and reads its banner up to "Press Ctrl-C".
    async fn start() -> Dev {
        let dir = tempfile::tempdir().expect("create the test directory");
        let log = std::fs::File::create(dir.path().join("dev.log")).expect("create the log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sigil"))
            .args(["dev", "--nodes", "1", "--data-dir"])
            .arg(dir.path().join("data"))
            .env_remove("SIGIL_ADDR")
            .env_remove("SIGIL_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn sigil dev");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + DEADLINE;
        let mut banner = Vec::new();
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let line = tokio::time::timeout(remaining, lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("no banner within {DEADLINE:?}: {banner:?}"))
                .expect("read the banner");
            let Some(line) = line else {
                let log = std::fs::read_to_string(dir.path().join("dev.log")).unwrap_or_default();
                panic!("sigil dev exited before its banner: {banner:?}\n{log}");
            };
            if line.contains("Press Ctrl-C") {
                break;
            }
            banner.push(line);
        }
        Dev {
            addresses: exported(&banner, "SIGIL_ADDR"),
            management: exported(&banner, "SIGIL_TOKEN"),
            child,
            dir,
        }
    }

    /// Runs `sigil` with `args` against this cluster with `token` (or none).
    async fn run(&self, args: &[&str], token: Option<&str>) -> Output {
        run_sigil(args, token, Some(&self.addresses)).await
    }

    /// Runs `sigil` and returns its JSON output, failing the test when it fails.
    async fn json(&self, args: &[&str], token: &str) -> Value {
        let output = self.run(args, Some(token)).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "sigil {args:?} failed: {stderr}");
        assert!(
            !stderr.contains(token),
            "sigil {args:?} printed the token: {stderr}"
        );
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("sigil {args:?} printed no JSON ({e}): {stderr}"))
    }

    /// Runs `sigil` expecting it to fail, and returns its stderr.
    async fn refused(&self, args: &[&str], token: &str) -> String {
        let output = self.run(args, Some(token)).await;
        assert!(
            !output.status.success(),
            "sigil {args:?} should fail; it printed {}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}

/// A client token may do what its policy grants and nothing more, and nothing once deleted.
///
/// Phases: `sigil dev` prints a working management token; with it, `acl policy apply` writes
/// the example policy and `acl token create` a client token naming it. That token's
/// `authorize` answers allowed in `default` and denied elsewhere, and the server agrees: the
/// example plan (namespace `default`) is accepted, a key rotation is PermissionDenied. Once
/// `acl token delete` removes it, the same secret is Unauthenticated. The answers come from
/// the server, so each assertion fails if the CLI sent the wrong token or none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_may_do_what_its_policy_grants_and_nothing_once_deleted() {
    // Phase 1: the dev cluster's management token works.
    let dev = Dev::start().await;
    let me = dev
        .json(&["acl", "token", "self", "--json"], &dev.management)
        .await;
    assert_eq!(
        me["type"], "management",
        "sigil dev prints a management token"
    );

    // Phase 2: a policy from the example file, and a client token with it.
    let policy = example("policy-web.hcl");
    let args = ["acl", "policy", "apply", "--json", "web", policy.as_str()];
    let written = dev.json(&args, &dev.management).await;
    assert!(
        written["log_index"].as_u64() > Some(0),
        "the policy committed"
    );
    let args = [
        "acl", "token", "create", "--name", "deployer", "--policy", "web", "--json",
    ];
    let created = dev.json(&args, &dev.management).await;
    assert_eq!(created["type"], "client", "a client token");
    assert_eq!(created["policies"][0], "web", "naming the policy");
    let client = created["secret_id"]
        .as_str()
        .expect("the secret")
        .to_owned();
    let accessor = created["accessor_id"]
        .as_str()
        .expect("the accessor")
        .to_owned();

    // Phase 3: the token may submit in `default` only, and may not rotate keys.
    for (namespace, allowed) in [("default", true), ("prod", false)] {
        let args = ["acl", "authorize", "--json", "--namespace", namespace];
        let args = [&args[..], &["--capability", "submit-job"]].concat();
        let answer = dev.json(&args, &client).await;
        assert_eq!(
            answer["allowed"], allowed,
            "submit-job in {namespace}: {answer}"
        );
    }
    let plan = example("plan.json");
    let submitted = dev.json(&["plan", "submit", plan.as_str()], &client).await;
    assert_eq!(
        submitted["allocations"].as_array().map(Vec::len),
        Some(2),
        "the client token submits the example plan"
    );
    let stderr = dev.refused(&["keyring", "rotate", "--now"], &client).await;
    assert!(
        stderr.contains("error: PermissionDenied:"),
        "a rotation is refused by code: {stderr}"
    );

    // Phase 4: once deleted, the secret is unknown.
    let args = ["acl", "token", "delete", accessor.as_str()];
    let deleted = dev.run(&args, Some(&dev.management)).await;
    assert!(deleted.status.success(), "the token is deleted");
    let stderr = dev.refused(&["acl", "token", "self"], &client).await;
    assert!(
        stderr.contains("error: Unauthenticated:"),
        "a deleted token is unknown: {stderr}"
    );
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("dev.log"));
            eprintln!("===== sigil dev log =====\n{}", log.unwrap_or_default());
        }
    }
}

/// The value of `export NAME=value` in the banner.
fn exported(banner: &[String], name: &str) -> String {
    let prefix = format!("export {name}=");
    banner
        .iter()
        .find_map(|line| line.trim().strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("the banner has no `{prefix}...` line: {banner:?}"))
        .to_owned()
}

/// The path of `examples/<name>` as a string argument.
fn example(name: &str) -> String {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    path.to_str().expect("a UTF-8 path").to_owned()
}
