//! `sigil keyring list | rotate | remove`: inspect the replicated root keys and change them
//! through the leader. Key material never leaves a server; these commands see metadata only.

use std::time::Duration;

use anyhow::bail;
use clap::{ArgGroup, Args, Subcommand};
use sigil_proto::v1::keyring_service_client::KeyringServiceClient;
use sigil_proto::v1::{ListKeysRequest, RemoveKeyRequest, RootKeyMeta, RotateKeyRequest};

use super::client::ClientArgs;
use super::table::{Table, unix_ms};

/// List, rotate and remove root keys.
#[derive(Debug, Args)]
pub struct KeyringArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    command: KeyringCommand,
}

#[derive(Debug, Subcommand)]
enum KeyringCommand {
    /// List every root key: id, state, creation and publish time.
    List,
    /// Create a new root key.
    ///
    /// `--now` activates it at once (emergency: tokens signed from now on use it; verifiers
    /// that cached the old JWKS reject them until they refetch). `--prepublish D` publishes it in
    /// the JWKS now and activates it after D, so verifiers learn it before it signs.
    ///
    /// A retry after an ambiguous failure (a timeout, a leader change) may rotate twice; the
    /// extra key is inactive and harmless.
    #[command(group(ArgGroup::new("when").required(true).args(["now", "prepublish"])))]
    Rotate {
        /// Activate the new key at once.
        #[arg(long)]
        now: bool,
        /// Publish the new key now and activate it after this long (`24h`, `7d`).
        #[arg(long, value_parser = humantime::parse_duration)]
        prepublish: Option<Duration>,
    },
    /// Remove a key that is not active.
    Remove {
        /// The key id (the JWT `kid`).
        key_id: String,
        /// Remove it even though tokens of live allocations were signed with it; they stop
        /// verifying.
        #[arg(long)]
        force: bool,
    },
}

/// Runs `sigil keyring ...`.
pub async fn run(args: KeyringArgs) -> anyhow::Result<()> {
    let mut client = args.client.connect()?;
    match args.command {
        KeyringCommand::List => {
            let response = client
                .call(ListKeysRequest {}, |channel, request| async move {
                    KeyringServiceClient::new(channel).list(request).await
                })
                .await?;
            print!("{}", key_table(&response.keys));
        }
        KeyringCommand::Rotate { now, prepublish } => {
            let request = rotate_request(now, prepublish)?;
            let response = client
                .call(request, |channel, request| async move {
                    KeyringServiceClient::new(channel).rotate(request).await
                })
                .await?;
            let Some(key) = response.key else {
                bail!("the server answered without the new key");
            };
            print!("{}", key_table(std::slice::from_ref(&key)));
            println!("committed at log index {}", response.log_index);
        }
        KeyringCommand::Remove { key_id, force } => {
            let key_id = key_id.trim().to_owned();
            if uuid::Uuid::parse_str(&key_id).is_err() {
                bail!("KEY_ID {key_id:?}: not a key id (a UUID, as `sigil keyring list` shows)");
            }
            let request = RemoveKeyRequest {
                key_id: key_id.clone(),
                force,
            };
            let response = client
                .call(request, |channel, request| async move {
                    KeyringServiceClient::new(channel).remove(request).await
                })
                .await?;
            println!("removed key {key_id} at log index {}", response.log_index);
        }
    }
    Ok(())
}

fn rotate_request(now: bool, prepublish: Option<Duration>) -> anyhow::Result<RotateKeyRequest> {
    let prepublish_seconds = match prepublish {
        Some(d) if d < Duration::from_secs(1) => {
            bail!("--prepublish: must be at least one second, or use --now")
        }
        Some(d) => d.as_secs(),
        None => 0,
    };
    // One id for every attempt of this command: a retry after a timeout or a leader change
    // then answers the key the first attempt created instead of rotating twice.
    Ok(RotateKeyRequest {
        now,
        prepublish_seconds,
        request_id: uuid::Uuid::new_v4().to_string(),
    })
}

fn key_table(keys: &[RootKeyMeta]) -> String {
    let mut table = Table::new(&["KEY ID", "STATE", "ALGORITHM", "CREATED", "PUBLISH TIME"]);
    for key in keys {
        table.row(vec![
            key.key_id.clone(),
            key.state.clone(),
            key.algorithm.clone(),
            unix_ms(key.create_time_ms),
            unix_ms(key.publish_time_ms),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepublish_is_sent_in_seconds_and_tiny_delays_are_refused() {
        let day = rotate_request(false, Some(Duration::from_secs(24 * 3600))).expect("valid");
        assert_eq!(
            (day.now, day.prepublish_seconds),
            (false, 86_400),
            "24h is sent as seconds"
        );
        let now = rotate_request(true, None).expect("valid");
        assert_eq!(
            (now.now, now.prepublish_seconds),
            (true, 0),
            "--now sends no delay"
        );
        let err = rotate_request(false, Some(Duration::from_millis(10))).expect_err("too short");
        assert!(
            err.to_string().contains("--prepublish"),
            "the flag is named: {err}"
        );
    }
}
