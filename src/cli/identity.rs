//! `sigil identity verify | sign`: check a workload token through a server (claims, key, live
//! allocation), or have the leader re-sign a named identity of a live allocation (renewal).

use std::io::Read;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use sigil_proto::v1::identity_service_client::IdentityServiceClient;
use sigil_proto::v1::{SignRequest, VerifyRequest};

use super::client::ClientArgs;

/// Verify and sign workload identities.
#[derive(Debug, Args)]
pub struct IdentityArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    command: IdentityCommand,
}

#[derive(Debug, Subcommand)]
enum IdentityCommand {
    /// Verify a token and print its key id, allocation and claims as JSON.
    Verify {
        /// The JWT, or `-` to read it from stdin (keeps it out of shell history).
        token: String,
    },
    /// Sign a fresh token for an identity of a live allocation and print it as JSON.
    Sign {
        /// The allocation id (a UUID from `plan submit`).
        #[arg(long = "alloc")]
        alloc: String,
        /// The task or service name.
        #[arg(long)]
        workload: String,
        /// The identity name.
        #[arg(long, default_value = "default")]
        identity: String,
    },
}

/// Runs `sigil identity ...`.
pub async fn run(args: IdentityArgs) -> anyhow::Result<()> {
    let mut client = args.client.connect()?;
    match args.command {
        IdentityCommand::Verify { token } => {
            let request = VerifyRequest {
                token: read_token(token)?,
            };
            let response = client
                .call(request, |channel, request| async move {
                    IdentityServiceClient::new(channel).verify(request).await
                })
                .await?;
            let claims: Value = serde_json::from_str(&response.claims_json)
                .context("the server sent claims that are not JSON")?;
            super::print_json(&json!({
                "key_id": response.key_id,
                "allocation_id": response.allocation_id,
                "namespace": response.namespace,
                "job_id": response.job_id,
                "claims": claims,
            }))
        }
        IdentityCommand::Sign {
            alloc,
            workload,
            identity,
        } => {
            if uuid::Uuid::parse_str(alloc.trim()).is_err() {
                bail!("--alloc {alloc:?}: not an allocation id (a UUID)");
            }
            let request = SignRequest {
                allocation_id: alloc.trim().to_owned(),
                workload,
                identity,
            };
            let response = client
                .call(request, |channel, request| async move {
                    IdentityServiceClient::new(channel).sign(request).await
                })
                .await?;
            let signed = response
                .identity
                .context("the server answered without an identity")?;
            super::print_json(&json!({
                "log_index": response.log_index,
                "workload": signed.workload,
                "workload_type": signed.workload_type,
                "identity": signed.identity,
                "key_id": signed.key_id,
                "expires_at": (signed.expires_at != 0).then_some(signed.expires_at),
                "jwt": signed.jwt,
            }))
        }
    }
}

/// The token argument, or stdin when it is `-`, without surrounding whitespace.
fn read_token(arg: String) -> anyhow::Result<String> {
    let token = if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the token from stdin")?;
        text
    } else {
        arg
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        bail!("TOKEN: empty; give a JWT or `-` to read one from stdin");
    }
    if token.split('.').count() != 3 {
        bail!("TOKEN: not a JWT (expected three base64url parts separated by '.')");
    }
    Ok(token)
}
