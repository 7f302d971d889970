//! `sigil plan submit`: read a plan file (the JSON form of `sigil_types::Plan`), submit it to
//! the cluster and print the allocations and their tokens as JSON. `sigil dev --smoke` and
//! `sigil bench` reuse [`parse_plan`], [`submit`] and [`response_json`].

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use sigil_proto::v1::SubmitPlanResponse;
use sigil_proto::v1::plan_service_client::PlanServiceClient;
use sigil_types::Plan;

use super::client::{Client, ClientArgs};

/// Largest message a plan or its answer may be, matching the server's limit.
const MAX_MESSAGE: usize = 64 << 20;

/// Submit plans.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    command: PlanCommand,
}

#[derive(Debug, Subcommand)]
enum PlanCommand {
    /// Submit a plan file (JSON) and print its allocations and tokens as JSON.
    ///
    /// A plan is applied once per plan id: submitting the same id again returns the first
    /// result (`"replayed": true`) instead of placing twice. Without an id in the file or on the
    /// command line, a fresh UUID is used.
    Submit {
        /// The plan file, or `-` for stdin.
        file: PathBuf,
        /// The plan id, overriding the file's.
        #[arg(long)]
        plan_id: Option<String>,
    },
}

/// Runs `sigil plan ...`.
pub async fn run(args: PlanArgs) -> anyhow::Result<()> {
    match args.command {
        PlanCommand::Submit { file, plan_id } => {
            let (text, source) = read_input(&file)?;
            let plan = parse_plan(&text, &source, plan_id.as_deref())?;
            let mut client = args.client.connect()?;
            let response = submit(&mut client, &plan).await?;
            super::print_json(&response_json(&response))
        }
    }
}

/// A plan from JSON `text` read from `source`, with its id set (`plan_id` wins over the file;
/// an empty or absent id becomes a fresh UUID) and validated before anything is sent.
pub fn parse_plan(text: &str, source: &str, plan_id: Option<&str>) -> anyhow::Result<Plan> {
    let mut value: Value =
        serde_json::from_str(text).with_context(|| format!("plan {source}: not valid JSON"))?;
    let object = value
        .as_object_mut()
        .with_context(|| format!("plan {source}: must be a JSON object"))?;
    let file_id = match object.get("plan_id") {
        None => "",
        Some(Value::String(id)) => id.as_str(),
        Some(other) => bail!("plan {source}: plan_id must be a string, got {other}"),
    };
    let id = match plan_id.unwrap_or(file_id) {
        "" => uuid::Uuid::new_v4().to_string(),
        id => id.to_owned(),
    };
    object.insert("plan_id".into(), Value::String(id));

    let plan: Plan = serde_json::from_value(value).with_context(|| format!("plan {source}"))?;
    plan.validate().with_context(|| format!("plan {source}"))?;
    Ok(plan)
}

/// Submits `plan`, retrying as [`Client::call`] does; a retry resends the same plan id.
pub async fn submit(client: &mut Client, plan: &Plan) -> anyhow::Result<SubmitPlanResponse> {
    let request = sigil_server::convert::plan_to_proto(plan);
    client
        .call(request, |channel, request| async move {
            PlanServiceClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE)
                .submit(request)
                .await
        })
        .await
}

/// A plan's answer as JSON: allocations with their identities and tokens.
pub fn response_json(response: &SubmitPlanResponse) -> Value {
    let allocations: Vec<Value> = response
        .allocations
        .iter()
        .map(|alloc| {
            let identities: Vec<Value> = alloc
                .identities
                .iter()
                .map(|i| {
                    json!({
                        "workload": i.workload,
                        "workload_type": i.workload_type,
                        "identity": i.identity,
                        "key_id": i.key_id,
                        "expires_at": (i.expires_at != 0).then_some(i.expires_at),
                        "jwt": i.jwt,
                    })
                })
                .collect();
            json!({
                "id": alloc.id,
                "namespace": alloc.namespace,
                "job_id": alloc.job_id,
                "group": alloc.group,
                "node_id": alloc.node_id,
                "status": alloc.status,
                "identities": identities,
            })
        })
        .collect();
    json!({
        "plan_id": response.plan_id,
        "log_index": response.log_index,
        "replayed": response.replayed,
        "allocations": allocations,
        "stopped": response.stopped,
    })
}

/// The file's text and a name for it in errors.
fn read_input(file: &PathBuf) -> anyhow::Result<(String, String)> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the plan from stdin")?;
        return Ok((text, "<stdin>".to_owned()));
    }
    let source = file.display().to_string();
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read plan {source}"))?;
    Ok((text, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../examples/plan.json");

    #[test]
    fn the_example_plan_parses_validates_and_gets_a_fresh_id() {
        let plan = parse_plan(EXAMPLE, "example", None).expect("the example plan is valid");
        assert!(
            uuid::Uuid::parse_str(&plan.plan_id.0).is_ok(),
            "a UUID is generated"
        );
        assert_eq!(
            (plan.job.namespace.as_str(), plan.job.id.as_str()),
            ("default", "web"),
            "the example's job"
        );
        assert_eq!(plan.place.len(), 2, "two placements");
        // Per allocation: nginx default + vault_default, sidecar default, service http default.
        assert_eq!(
            plan.identity_count(),
            8,
            "identities minted by the example plan"
        );
    }

    #[test]
    fn the_command_line_plan_id_wins_over_the_file() {
        let text = EXAMPLE.replacen('{', "{\"plan_id\": \"from-file\",", 1);
        let plan = parse_plan(&text, "f", None).expect("valid");
        assert_eq!(plan.plan_id.0, "from-file", "the file's id is kept");
        let plan = parse_plan(&text, "f", Some("from-flag")).expect("valid");
        assert_eq!(plan.plan_id.0, "from-flag", "--plan-id wins");
    }

    #[test]
    fn bad_plans_are_rejected_naming_the_source_and_field() {
        let text = format!("{:#}", parse_plan("[1]", "p.json", None).unwrap_err());
        assert!(text.contains("p.json") && text.contains("object"), "{text}");

        let typo = EXAMPLE.replacen("\"place\"", "\"placements\"", 1);
        let text = format!("{:#}", parse_plan(&typo, "p.json", None).unwrap_err());
        assert!(
            text.contains("placements"),
            "the unknown field is named: {text}"
        );

        let bad_id = parse_plan(EXAMPLE, "p.json", Some("has space")).unwrap_err();
        let text = format!("{bad_id:#}");
        assert!(
            text.contains("plan_id"),
            "the invalid field is named: {text}"
        );

        let numeric = EXAMPLE.replacen('{', "{\"plan_id\": 7,", 1);
        let text = format!("{:#}", parse_plan(&numeric, "p.json", None).unwrap_err());
        assert!(text.contains("plan_id must be a string"), "{text}");
    }
}
