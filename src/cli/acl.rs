//! `sigil acl ...`: the one-time bootstrap, policies, tokens, and the caller's own view
//! (`token self`, `authorize`), all through `AclService`. `sigil dev` and `sigil bench --local`
//! reuse [`bootstrap`] to get the management token of the cluster they start.
//!
//! Flags are checked here before any call, so a wrong combination is named without a round
//! trip; the server checks everything again and is the authority on policy text.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use sigil_proto::v1::acl_service_client::AclServiceClient;
use sigil_proto::v1::authorize_request::Check;
use sigil_proto::v1::{
    AclPolicy, AclSummary, AclToken, AuthorizeRequest, BootstrapRequest, CreateTokenRequest,
    CreateTokenResponse, DeletePolicyRequest, DeleteTokenRequest, GetPolicyRequest,
    GetTokenRequest, JobAcl, ListPoliciesRequest, ListTokensRequest, UpsertPolicyRequest,
    VariablesCheck, WhoAmIRequest, WhoAmIResponse,
};

use super::client::{Client, ClientArgs};
use super::table::{Table, unix_ms};

/// ACL policies and tokens.
#[derive(Debug, Args)]
pub struct AclArgs {
    #[command(flatten)]
    pub client: ClientArgs,

    /// Print the answer as JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: AclCommand,
}

#[derive(Debug, Subcommand)]
enum AclCommand {
    /// Create the first management token and print its secret, once.
    ///
    /// Works once per cluster; later calls fail with FailedPrecondition, also after that token
    /// was deleted. The secret is not stored anywhere but in this output.
    Bootstrap,
    /// Create, list, show and delete policies.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Create, list, show and delete tokens, and show the caller's own.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Ask whether the caller's token allows one thing, and why.
    Authorize(AuthorizeArgs),
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Create or replace a policy from an HCL or JSON file.
    Apply(ApplyArgs),
    /// List every policy.
    List,
    /// Show one policy with its rules (as canonical HCL).
    Info {
        /// The policy name.
        name: String,
    },
    /// Delete a policy; tokens that name it lose its grants.
    Delete {
        /// The policy name.
        name: String,
    },
}

/// `policy apply`: the policy and, optionally, the workloads it is attached to.
#[derive(Debug, Args)]
struct ApplyArgs {
    /// Attach the policy to the workload identities of this namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Narrow the attachment to this job (needs --namespace).
    #[arg(long)]
    job: Option<String>,
    /// Narrow the attachment to this task group (needs --job).
    #[arg(long)]
    group: Option<String>,
    /// Narrow the attachment to this task (needs --group).
    #[arg(long)]
    task: Option<String>,
    /// What the policy is for.
    #[arg(long, default_value = "")]
    description: String,
    /// The policy name: 1 to 128 letters, digits or '-'.
    name: String,
    /// The rules file (HCL, or JSON when it starts with '{'), or `-` for stdin.
    file: PathBuf,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print its secret, once.
    Create(CreateArgs),
    /// List every token (never their secrets).
    List,
    /// Show one token.
    Info {
        /// The token's accessor id.
        accessor: String,
    },
    /// Delete a token; its secret stops working at once.
    Delete {
        /// The token's accessor id.
        accessor: String,
    },
    /// Show the caller's own token (or workload identity) and what it may do.
    #[command(name = "self")]
    Whoami,
}

/// `token create`: a management token, or a client token with its policies.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("grants").required(true).multiple(true).args(["kind", "policies"])))]
struct CreateArgs {
    /// A name for people reading `token list`.
    #[arg(long)]
    name: String,
    /// `management` may do everything; `client` only what its policies grant.
    #[arg(long = "type", value_enum)]
    kind: Option<TokenType>,
    /// A policy of a client token; repeat for several.
    #[arg(long = "policy", value_name = "POLICY")]
    policies: Vec<String>,
}

/// The kinds of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TokenType {
    /// May do everything.
    Management,
    /// May do what its policies grant.
    Client,
}

/// `authorize`: one capability question about the caller.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("check")
        .required(true)
        .args(["capability", "operator_capability", "variable"])
))]
struct AuthorizeArgs {
    /// The namespace of a namespace capability or variables path.
    #[arg(long)]
    namespace: Option<String>,
    /// A namespace capability, such as `submit-job`.
    #[arg(long)]
    capability: Option<String>,
    /// A cluster-wide operator capability, such as `keyring-rotate`.
    #[arg(long)]
    operator_capability: Option<String>,
    /// A variables path, such as `nomad/jobs/web/db` (with --op).
    #[arg(long, requires = "op")]
    variable: Option<String>,
    /// The operation on --variable.
    #[arg(long, value_enum)]
    op: Option<VariableOp>,
}

/// Operations on a variables path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum VariableOp {
    /// Read a variable.
    Read,
    /// List variables.
    List,
    /// Create or update a variable.
    Write,
    /// Delete a variable.
    Destroy,
}

/// Runs `sigil acl ...`.
pub async fn run(args: AclArgs) -> anyhow::Result<()> {
    let mut client = args.client.connect()?;
    let json = args.json;
    match args.command {
        AclCommand::Bootstrap => {
            let created = bootstrap(&mut client).await?;
            print_created(&created, json)
        }
        AclCommand::Policy { command } => run_policy(&mut client, command, json).await,
        AclCommand::Token { command } => run_token(&mut client, command, json).await,
        AclCommand::Authorize(check) => {
            let request = check.request()?;
            let answer = client
                .call(request, |ch, req| async move {
                    AclServiceClient::new(ch).authorize(req).await
                })
                .await?;
            if json {
                return super::print_json(&json!({
                    "allowed": answer.allowed,
                    "reason": answer.reason,
                }));
            }
            let verdict = if answer.allowed { "allowed" } else { "denied" };
            println!("{verdict}: {}", answer.reason);
            Ok(())
        }
    }
}

/// Bootstraps the ACL system through `client`, retrying while no leader is known, and returns
/// the management token with its secret.
pub async fn bootstrap(client: &mut Client) -> anyhow::Result<CreateTokenResponse> {
    client
        .call(BootstrapRequest {}, |ch, req| async move {
            AclServiceClient::new(ch).bootstrap(req).await
        })
        .await
}

async fn run_policy(client: &mut Client, command: PolicyCommand, json: bool) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Apply(apply) => {
            let policy = apply.policy()?;
            let name = policy.name.clone();
            let request = UpsertPolicyRequest {
                policy: Some(policy),
            };
            let written = client
                .call(request, |ch, req| async move {
                    AclServiceClient::new(ch).upsert_policy(req).await
                })
                .await?;
            print_write(&format!("applied policy {name}"), written.log_index, json)
        }
        PolicyCommand::List => {
            let listed = client
                .call(ListPoliciesRequest {}, |ch, req| async move {
                    AclServiceClient::new(ch).list_policies(req).await
                })
                .await?;
            if json {
                let policies: Vec<Value> = listed.policies.iter().map(policy_json).collect();
                return super::print_json(&Value::Array(policies));
            }
            print!("{}", policy_table(&listed.policies));
            Ok(())
        }
        PolicyCommand::Info { name } => {
            let policy = client
                .call(GetPolicyRequest { name }, |ch, req| async move {
                    AclServiceClient::new(ch).get_policy(req).await
                })
                .await?;
            if json {
                return super::print_json(&policy_json(&policy));
            }
            print!("{}", policy_text(&policy));
            Ok(())
        }
        PolicyCommand::Delete { name } => {
            let request = DeletePolicyRequest { name: name.clone() };
            let written = client
                .call(request, |ch, req| async move {
                    AclServiceClient::new(ch).delete_policy(req).await
                })
                .await?;
            print_write(&format!("deleted policy {name}"), written.log_index, json)
        }
    }
}

async fn run_token(client: &mut Client, command: TokenCommand, json: bool) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create(create) => {
            let request = create.request()?;
            let created = client
                .call(request, |ch, req| async move {
                    AclServiceClient::new(ch).create_token(req).await
                })
                .await?;
            print_created(&created, json)
        }
        TokenCommand::List => {
            let listed = client
                .call(ListTokensRequest {}, |ch, req| async move {
                    AclServiceClient::new(ch).list_tokens(req).await
                })
                .await?;
            if json {
                let tokens: Vec<Value> = listed.tokens.iter().map(token_json).collect();
                return super::print_json(&Value::Array(tokens));
            }
            print!("{}", token_table(&listed.tokens));
            Ok(())
        }
        TokenCommand::Info { accessor } => {
            let request = GetTokenRequest {
                accessor_id: accessor_id(&accessor)?,
            };
            let token = client
                .call(request, |ch, req| async move {
                    AclServiceClient::new(ch).get_token(req).await
                })
                .await?;
            if json {
                return super::print_json(&token_json(&token));
            }
            print!("{}", fields(&token_fields(&token)));
            Ok(())
        }
        TokenCommand::Delete { accessor } => {
            let accessor_id = accessor_id(&accessor)?;
            let request = DeleteTokenRequest {
                accessor_id: accessor_id.clone(),
            };
            let written = client
                .call(request, |ch, req| async move {
                    AclServiceClient::new(ch).delete_token(req).await
                })
                .await?;
            print_write(
                &format!("deleted token {accessor_id}"),
                written.log_index,
                json,
            )
        }
        TokenCommand::Whoami => {
            let me = client
                .call(WhoAmIRequest {}, |ch, req| async move {
                    AclServiceClient::new(ch).who_am_i(req).await
                })
                .await?;
            if json {
                return super::print_json(&who_am_i_json(&me));
            }
            print!("{}", who_am_i_text(&me));
            Ok(())
        }
    }
}

impl ApplyArgs {
    /// The policy to upsert: the rules file's text and the checked job association.
    fn policy(&self) -> anyhow::Result<AclPolicy> {
        let job_acl = job_acl(
            self.namespace.as_deref(),
            self.job.as_deref(),
            self.group.as_deref(),
            self.task.as_deref(),
        )?;
        let (rules, source) = read_rules(&self.file)?;
        if rules.trim().is_empty() {
            bail!("policy {source}: empty; a policy needs a namespace or operator block");
        }
        Ok(AclPolicy {
            name: self.name.clone(),
            description: self.description.clone(),
            rules,
            job_acl,
        })
    }
}

impl CreateArgs {
    /// The token request, with the type's policy rule checked.
    fn request(&self) -> anyhow::Result<CreateTokenRequest> {
        let kind = self.kind.unwrap_or(TokenType::Client);
        match kind {
            TokenType::Management if !self.policies.is_empty() => {
                bail!("--policy: a management token takes no policies; drop --policy or --type")
            }
            TokenType::Client if self.policies.is_empty() => {
                bail!("--policy: a client token needs at least one policy")
            }
            _ => {}
        }
        let kind = match kind {
            TokenType::Management => "management",
            TokenType::Client => "client",
        };
        Ok(CreateTokenRequest {
            name: self.name.clone(),
            r#type: kind.into(),
            policies: self.policies.clone(),
        })
    }
}

impl AuthorizeArgs {
    /// The request; namespace capabilities and variables need `--namespace`, operator
    /// capabilities are cluster-wide and ignore it.
    fn request(&self) -> anyhow::Result<AuthorizeRequest> {
        if self.op.is_some() && self.variable.is_none() {
            bail!("--op: goes with --variable, the path it operates on");
        }
        let namespace = self.namespace.clone().unwrap_or_default();
        let (check, flag) = match (&self.capability, &self.operator_capability, &self.variable) {
            (Some(cap), _, _) => (Check::NamespaceCapability(cap.clone()), "--capability"),
            (_, Some(cap), _) => (Check::OperatorCapability(cap.clone()), ""),
            (_, _, Some(path)) => {
                let op = self.op.context("--variable: needs --op")?;
                let operation = op.to_possible_value().map(|v| v.get_name().to_owned());
                let check = VariablesCheck {
                    path: path.clone(),
                    operation: operation.unwrap_or_default(),
                };
                (Check::Variables(check), "--variable")
            }
            _ => bail!("give one of --capability, --operator-capability or --variable"),
        };
        if !flag.is_empty() && namespace.trim().is_empty() {
            bail!("--namespace: required with {flag}");
        }
        Ok(AuthorizeRequest {
            namespace,
            check: Some(check),
        })
    }
}

/// The job association from the `policy apply` flags. Each narrower flag needs the one above
/// it, as the server requires, so a wrong combination is named before the call.
fn job_acl(
    namespace: Option<&str>,
    job: Option<&str>,
    group: Option<&str>,
    task: Option<&str>,
) -> anyhow::Result<Option<JobAcl>> {
    let flags = [
        ("--namespace", namespace),
        ("--job", job),
        ("--group", group),
        ("--task", task),
    ];
    for (flag, value) in flags {
        if value.is_some_and(|v| v.trim().is_empty()) {
            bail!("{flag}: must not be empty");
        }
    }
    for pair in flags.windows(2) {
        let [(wider, wider_value), (narrower, narrower_value)] = pair else {
            continue;
        };
        if narrower_value.is_some() && wider_value.is_none() {
            bail!("{narrower} needs {wider}: a workload association narrows from the namespace");
        }
    }
    let Some(namespace) = namespace else {
        return Ok(None);
    };
    Ok(Some(JobAcl {
        namespace: namespace.to_owned(),
        job: job.unwrap_or_default().to_owned(),
        group: group.unwrap_or_default().to_owned(),
        task: task.unwrap_or_default().to_owned(),
    }))
}

/// An accessor id, checked to be a UUID so a secret pasted by mistake is not sent.
fn accessor_id(text: &str) -> anyhow::Result<String> {
    let text = text.trim();
    match uuid::Uuid::parse_str(text) {
        Ok(id) => Ok(id.to_string()),
        Err(_) => bail!("ACCESSOR: not an accessor id (a UUID, as `sigil acl token list` shows)"),
    }
}

/// The rules file's text and a name for it in errors.
fn read_rules(file: &Path) -> anyhow::Result<(String, String)> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the policy from stdin")?;
        return Ok((text, "<stdin>".to_owned()));
    }
    let source = file.display().to_string();
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read policy {source}"))?;
    Ok((text, source))
}

/// Prints a new token with its secret, which the server will not show again.
fn print_created(created: &CreateTokenResponse, json: bool) -> anyhow::Result<()> {
    let token = created
        .token
        .as_ref()
        .context("the server answered without the token")?;
    if json {
        let mut value = token_json(token);
        value["secret_id"] = json!(created.secret_id);
        value["log_index"] = json!(created.log_index);
        return super::print_json(&value);
    }
    let mut rows = token_fields(token);
    rows.insert(1, ("Secret ID", created.secret_id.clone()));
    print!("{}", fields(&rows));
    println!(
        "\nThe secret id is shown only this once; servers keep only its hash.\n\
         Store it in a secret manager now, and use it with:\n  export SIGIL_TOKEN={}",
        created.secret_id
    );
    Ok(())
}

fn print_write(what: &str, log_index: u64, json: bool) -> anyhow::Result<()> {
    if json {
        return super::print_json(&json!({ "log_index": log_index }));
    }
    println!("{what} at log index {log_index}");
    Ok(())
}

/// `Key:  value` lines with the values aligned.
fn fields(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    rows.iter()
        .map(|(key, value)| format!("{:<width$}  {value}\n", format!("{key}:")))
        .collect()
}

fn token_fields(token: &AclToken) -> Vec<(&'static str, String)> {
    vec![
        ("Accessor ID", token.accessor_id.clone()),
        ("Name", token.name.clone()),
        ("Type", token.r#type.clone()),
        ("Policies", list_or_dash(&token.policies)),
        ("Created", unix_ms(token.create_time_ms)),
    ]
}

fn token_json(token: &AclToken) -> Value {
    json!({
        "accessor_id": token.accessor_id,
        "name": token.name,
        "type": token.r#type,
        "policies": token.policies,
        "create_time_ms": token.create_time_ms,
    })
}

fn token_table(tokens: &[AclToken]) -> String {
    let mut table = Table::new(&["ACCESSOR ID", "NAME", "TYPE", "POLICIES", "CREATED"]);
    for token in tokens {
        table.row(vec![
            token.accessor_id.clone(),
            token.name.clone(),
            token.r#type.clone(),
            list_or_dash(&token.policies),
            unix_ms(token.create_time_ms),
        ]);
    }
    table.render()
}

/// A job association as `namespace/job/group/task`, down to the narrowest set field.
fn job_acl_text(job_acl: Option<&JobAcl>) -> String {
    let Some(j) = job_acl else {
        return "-".to_owned();
    };
    [&j.namespace, &j.job, &j.group, &j.task]
        .into_iter()
        .take_while(|part| !part.is_empty())
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("/")
}

fn policy_json(policy: &AclPolicy) -> Value {
    let job_acl = policy.job_acl.as_ref().map(
        |j| json!({ "namespace": j.namespace, "job": j.job, "group": j.group, "task": j.task }),
    );
    json!({
        "name": policy.name,
        "description": policy.description,
        "job_acl": job_acl,
        "rules": policy.rules,
    })
}

fn policy_table(policies: &[AclPolicy]) -> String {
    let mut table = Table::new(&["NAME", "JOB ACL", "DESCRIPTION"]);
    for policy in policies {
        table.row(vec![
            policy.name.clone(),
            job_acl_text(policy.job_acl.as_ref()),
            policy.description.clone(),
        ]);
    }
    table.render()
}

fn policy_text(policy: &AclPolicy) -> String {
    let rows = [
        ("Name", policy.name.clone()),
        ("Description", policy.description.clone()),
        ("Job ACL", job_acl_text(policy.job_acl.as_ref())),
    ];
    format!("{}Rules:\n{}\n", fields(&rows), policy.rules.trim_end())
}

fn who_am_i_json(me: &WhoAmIResponse) -> Value {
    let workload = me.workload.as_ref().map(|w| {
        let claims: Value = serde_json::from_str(&w.claims_json).unwrap_or(Value::Null);
        json!({
            "namespace": w.namespace,
            "job_id": w.job_id,
            "group": w.group,
            "task": w.task,
            "service": w.service,
            "allocation_id": w.allocation_id,
            "claims": claims,
        })
    });
    json!({
        "type": me.r#type,
        "token": me.token.as_ref().map(token_json),
        "workload": workload,
        "policies": me.policies,
        "summary": me.summary.as_ref().map(summary_json),
    })
}

fn summary_json(summary: &AclSummary) -> Value {
    json!({
        "management": summary.management,
        "namespaces": summary.namespaces.iter().map(|g| json!({
            "namespace": g.namespace,
            "capabilities": g.capabilities,
        })).collect::<Vec<_>>(),
        "variables": summary.variables.iter().map(|g| json!({
            "namespace": g.namespace,
            "path": g.path,
            "capabilities": g.capabilities,
        })).collect::<Vec<_>>(),
        "operator": summary.operator,
    })
}

fn who_am_i_text(me: &WhoAmIResponse) -> String {
    let mut rows = vec![("Type", me.r#type.clone())];
    if let Some(token) = &me.token {
        rows.push(("Accessor ID", token.accessor_id.clone()));
        rows.push(("Name", token.name.clone()));
    }
    if let Some(w) = &me.workload {
        rows.push(("Workload", job_acl_text(Some(&workload_scope(w)))));
        rows.push(("Allocation", w.allocation_id.clone()));
    }
    rows.push(("Policies", list_or_dash(&me.policies)));
    let mut text = fields(&rows);
    let Some(summary) = &me.summary else {
        return text;
    };
    if summary.management {
        text.push_str("Grants:       everything (management)\n");
        return text;
    }
    let mut grants = Table::new(&["GRANT", "SCOPE", "CAPABILITIES"]);
    for g in &summary.namespaces {
        let scope = format!("namespace {}", g.namespace);
        grants.row(vec!["namespace".into(), scope, g.capabilities.join(", ")]);
    }
    for g in &summary.variables {
        let scope = format!("{} in namespace {}", g.path, g.namespace);
        grants.row(vec!["variables".into(), scope, g.capabilities.join(", ")]);
    }
    if !summary.operator.is_empty() {
        let row = vec![
            "operator".into(),
            "cluster".into(),
            summary.operator.join(", "),
        ];
        grants.row(row);
    }
    text.push('\n');
    text.push_str(&grants.render());
    text
}

/// A workload caller's scope in the shape of a job association, for display.
fn workload_scope(w: &sigil_proto::v1::WorkloadCaller) -> JobAcl {
    let task = if w.task.is_empty() {
        &w.service
    } else {
        &w.task
    };
    JobAcl {
        namespace: w.namespace.clone(),
        job: w.job_id.clone(),
        group: w.group.clone(),
        task: task.clone(),
    }
}

fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        return "-".to_owned();
    }
    items.join(", ")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(extra: &[&str]) -> Result<AclArgs, clap::Error> {
        let argv = ["sigil", "acl"].iter().chain(extra).copied();
        match Cli::try_parse_from(argv)?.command {
            Command::Acl(args) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    fn authorize(extra: &[&str]) -> anyhow::Result<AuthorizeRequest> {
        let argv: Vec<&str> = ["authorize"].iter().chain(extra).copied().collect();
        match parse(&argv)?.command {
            AclCommand::Authorize(args) => args.request(),
            other => panic!("parsed as {other:?}"),
        }
    }

    fn create(extra: &[&str]) -> anyhow::Result<CreateTokenRequest> {
        let argv: Vec<&str> = ["token", "create"].iter().chain(extra).copied().collect();
        match parse(&argv)?.command {
            AclCommand::Token {
                command: TokenCommand::Create(args),
            } => args.request(),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn authorize_builds_one_check_of_each_kind() {
        let cap = authorize(&["--namespace", "default", "--capability", "submit-job"]);
        let cap = cap.expect("a namespace capability");
        assert_eq!(cap.namespace, "default", "the namespace is sent");
        assert_eq!(
            cap.check,
            Some(Check::NamespaceCapability("submit-job".into())),
            "a namespace capability check"
        );

        let op = authorize(&["--operator-capability", "keyring-rotate"]).expect("no namespace");
        assert_eq!(
            op.check,
            Some(Check::OperatorCapability("keyring-rotate".into())),
            "operator capabilities need no namespace"
        );

        let var = authorize(&["--namespace", "default", "--variable", "nomad/jobs/web/db"]);
        assert!(var.is_err(), "--variable without --op is refused");
        let var = authorize(&[
            "--namespace",
            "default",
            "--variable",
            "nomad/jobs/web/db",
            "--op",
            "destroy",
        ])
        .expect("a variables check");
        let expected = VariablesCheck {
            path: "nomad/jobs/web/db".into(),
            operation: "destroy".into(),
        };
        assert_eq!(
            var.check,
            Some(Check::Variables(expected)),
            "path and op are sent"
        );
    }

    #[test]
    fn authorize_refuses_missing_and_conflicting_checks_by_flag() {
        let err = authorize(&["--capability", "submit-job"]).expect_err("no namespace");
        assert!(err.to_string().contains("--namespace"), "{err}");
        let err = authorize(&["--variable", "a/b", "--op", "read"]).expect_err("no namespace");
        assert!(err.to_string().contains("--namespace"), "{err}");

        let both = ["--namespace", "n", "--capability", "read-job"];
        let both = [&both[..], &["--operator-capability", "raft-read"]].concat();
        assert!(authorize(&both).is_err(), "two checks at once are refused");
        assert!(
            authorize(&["--namespace", "n"]).is_err(),
            "a check is required"
        );
        let err = authorize(&["--operator-capability", "x", "--op", "read"]).expect_err("lone op");
        assert!(err.to_string().contains("--variable"), "{err}");
        let err = authorize(&["--variable", "a", "--op", "erase"]).expect_err("unknown op");
        assert!(err.to_string().contains("erase"), "{err}");
    }

    #[test]
    fn job_acl_flags_must_narrow_from_the_namespace() {
        assert_eq!(
            job_acl(None, None, None, None).expect("none"),
            None,
            "unattached"
        );
        let full = job_acl(
            Some("default"),
            Some("web"),
            Some("frontend"),
            Some("nginx"),
        );
        let full = full.expect("every level").expect("attached");
        assert_eq!(
            job_acl_text(Some(&full)),
            "default/web/frontend/nginx",
            "every level is kept"
        );
        let ns = job_acl(Some("default"), None, None, None).expect("namespace only");
        assert_eq!(job_acl_text(ns.as_ref()), "default", "a whole namespace");

        let cases = [
            (
                job_acl(None, Some("web"), None, None),
                "--job needs --namespace",
            ),
            (
                job_acl(Some("d"), None, Some("g"), None),
                "--group needs --job",
            ),
            (
                job_acl(Some("d"), Some("j"), None, Some("t")),
                "--task needs --group",
            ),
            (
                job_acl(Some(" "), None, None, None),
                "--namespace: must not be empty",
            ),
        ];
        for (result, expected) in cases {
            let err = result.expect_err(expected);
            assert!(
                err.to_string().starts_with(expected),
                "{expected}: got {err}"
            );
        }
    }

    #[test]
    fn token_create_needs_a_type_or_policies_and_not_both_kinds_of_grant() {
        let client = create(&["--name", "ci", "--policy", "web", "--policy", "db"]);
        let client = client.expect("policies make a client token");
        assert_eq!(client.r#type, "client", "client is the default type");
        assert_eq!(client.policies, ["web", "db"], "every --policy is sent");

        let mgmt = create(&["--name", "ops", "--type", "management"]).expect("management");
        assert_eq!(
            (mgmt.r#type.as_str(), mgmt.policies.len()),
            ("management", 0),
            "a management token without policies"
        );

        assert!(
            create(&["--name", "x"]).is_err(),
            "a type or a policy is required"
        );
        let err = create(&["--name", "x", "--type", "management", "--policy", "web"]);
        assert!(err.expect_err("both").to_string().contains("no policies"));
        let err = create(&["--name", "x", "--type", "client"]).expect_err("no policy");
        assert!(err.to_string().contains("at least one policy"), "{err}");
    }

    #[test]
    fn accessor_ids_must_be_uuids_and_are_not_echoed() {
        let id = accessor_id(" 0b5c6f4e-8a1d-4d0f-9a77-2a4f5e6d7c8b ").expect("a UUID");
        assert_eq!(id, "0b5c6f4e-8a1d-4d0f-9a77-2a4f5e6d7c8b", "trimmed");
        let err = accessor_id("not-an-id").expect_err("not a UUID");
        assert!(err.to_string().contains("ACCESSOR"), "{err}");
        assert!(!err.to_string().contains("not-an-id"), "not echoed: {err}");
    }

    #[test]
    fn the_example_policy_file_is_read_with_its_job_association() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policy-web.hcl");
        let path = file.to_str().expect("UTF-8 path");
        let args = parse(&["policy", "apply", "--namespace", "default", "web", path])
            .expect("the command line parses");
        let AclCommand::Policy {
            command: PolicyCommand::Apply(apply),
        } = args.command
        else {
            panic!("parsed as another command");
        };
        let policy = apply.policy().expect("the example policy is read");
        assert!(
            policy.rules.contains("submit-job"),
            "the rules are sent as written"
        );
        assert_eq!(
            job_acl_text(policy.job_acl.as_ref()),
            "default",
            "attached to the namespace"
        );
    }
}
