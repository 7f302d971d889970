//! `sigil bench`: drives a running cluster with plans and reports throughput and latency, sent
//! straight to the leader (`direct`) and through a follower that forwards them (`forwarded`).
//! `--local` first starts a three-server cluster in this process and bootstraps its ACL system,
//! so one command on a fresh machine gives figures; against a running cluster, `--token` (or
//! `SIGIL_TOKEN`) must allow `submit-job` in `default` and `raft-read`.
//!
//! Every plan carries a fresh plan id, so each one really places and signs; none is a replay.
//! Requests are not retried: a failed plan is counted as an error, not hidden in the latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::json;
use sigil_proto::v1::operator_service_client::OperatorServiceClient;
use sigil_proto::v1::plan_service_client::PlanServiceClient;
use sigil_proto::v1::{ListPeersRequest, Peer, SubmitPlanRequest};
use sigil_types::{Job, MAX_IDENTITIES_PER_PLAN, Placement, Plan, PlanId, Task, TaskGroup};
use tokio::task::JoinSet;
use tonic::Request;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use super::client::{AUTHORIZATION, Client, ClientArgs, Token, describe};
use super::table::Table;
use crate::dev::LocalCluster;

/// The most concurrent clients; each holds its own connection.
const MAX_CLIENTS: usize = 1024;

/// Measure plan throughput and latency (build with --release for meaningful figures).
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    client: ClientArgs,

    /// Plans to submit in each mode.
    #[arg(long, default_value_t = 2000)]
    plans: usize,

    /// Concurrent clients, each on its own connection.
    #[arg(long, default_value_t = 8)]
    clients: usize,

    /// Tasks per allocation; each task gets its default identity.
    #[arg(long, default_value_t = 4)]
    tasks: usize,

    /// Allocations each plan places.
    #[arg(long, default_value_t = 1)]
    allocs_per_plan: usize,

    /// Send plans to the leader, to a follower that forwards them, or both in turn.
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    mode: Mode,

    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,

    /// Start a three-server cluster in this process, bootstrap its ACLs and bench it with the
    /// management token (`--address` and `--token` are ignored).
    /// Clients and servers then share this machine's CPUs.
    #[arg(long)]
    local: bool,
}

/// Where plans are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// To the leader.
    Direct,
    /// To a follower, which forwards each plan to the leader.
    Forwarded,
    /// Direct, then forwarded.
    Both,
}

/// What the clients of one mode share: the plan counter, the plan and how to send it.
#[derive(Debug, Clone)]
struct Work {
    /// How many plans have been taken; a client stops once it reaches `total`.
    next: Arc<AtomicUsize>,
    total: usize,
    template: SubmitPlanRequest,
    timeout: Duration,
    /// `Bearer <token>` (marked sensitive), sent with every plan when a token is given.
    authorization: Option<MetadataValue<Ascii>>,
}

/// What the workers of one mode observed.
#[derive(Debug, Default)]
struct Samples {
    latencies: Vec<Duration>,
    identities: usize,
    errors: usize,
    first_error: Option<String>,
}

/// One mode's figures.
#[derive(Debug, Serialize)]
struct Report {
    mode: &'static str,
    target: String,
    plans: usize,
    errors: usize,
    seconds: f64,
    plans_per_sec: f64,
    identities_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_error: Option<String>,
}

/// Runs `sigil bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let template = sigil_server::convert::plan_to_proto(&plan_template(&args)?);
    let reports = if args.local {
        let cluster = LocalCluster::start(3, None).await?;
        let measured = match super::dev::ready_and_bootstrapped(&cluster).await {
            Ok((_, secret)) => {
                let addrs: Vec<String> = cluster.addrs().into_iter().map(|n| n.grpc).collect();
                measure(&args, &addrs, &template, Some(&Token::new(secret))).await
            }
            Err(err) => Err(err),
        };
        // Stop the servers before printing, so their shutdown logs do not trail the results.
        cluster.shutdown().await;
        measured?
    } else {
        let token = args.client.token.as_ref();
        measure(&args, &args.client.address, &template, token).await?
    };
    print_reports(&args, &reports)?;

    let failed: usize = reports.iter().map(|r| r.errors).sum();
    if failed > 0 {
        let first = reports
            .iter()
            .find_map(|r| r.first_error.as_deref())
            .unwrap_or("");
        bail!("{failed} plans failed; the first: {first}");
    }
    Ok(())
}

/// Finds the leader and a follower, then runs each requested mode against its target.
async fn measure(
    args: &BenchArgs,
    addrs: &[String],
    template: &SubmitPlanRequest,
    token: Option<&Token>,
) -> anyhow::Result<Vec<Report>> {
    let mut client = Client::new(addrs, args.client.timeout)?.with_token(token)?;
    let peers = client
        .call(ListPeersRequest {}, |channel, request| async move {
            OperatorServiceClient::new(channel)
                .list_peers(request)
                .await
        })
        .await
        .context("cannot list the cluster's servers")?
        .peers;
    let mut reports = Vec::new();
    for (mode, target) in targets(args.mode, &peers)? {
        reports.push(run_mode(&client, mode, &target.address, args, template).await?);
    }
    Ok(reports)
}

fn print_reports(args: &BenchArgs, reports: &[Report]) -> anyhow::Result<()> {
    let per_plan = args.tasks * args.allocs_per_plan;
    if args.json {
        return super::print_json(&json!({
            "plans": args.plans,
            "clients": args.clients,
            "tasks": args.tasks,
            "allocs_per_plan": args.allocs_per_plan,
            "identities_per_plan": per_plan,
            "results": reports,
        }));
    }
    println!(
        "{} plans per mode, {} clients, {} tasks x {} allocations = {per_plan} identities per plan",
        args.plans, args.clients, args.tasks, args.allocs_per_plan
    );
    print!("{}", report_table(reports));
    Ok(())
}

/// The leader for `direct`, a follower for `forwarded`, both in turn for `both`.
fn targets(mode: Mode, peers: &[Peer]) -> anyhow::Result<Vec<(Mode, &Peer)>> {
    let leader = peers
        .iter()
        .find(|p| p.leader)
        .context("the cluster has no leader right now; retry when it is ready")?;
    let follower = || {
        peers
            .iter()
            .find(|p| !p.leader && p.voter)
            .context("forwarded mode needs a follower, and the cluster has a single server")
    };
    Ok(match mode {
        Mode::Direct => vec![(Mode::Direct, leader)],
        Mode::Forwarded => vec![(Mode::Forwarded, follower()?)],
        Mode::Both => vec![(Mode::Direct, leader), (Mode::Forwarded, follower()?)],
    })
}

/// Opens one connection per client, warms each up with one plan, then lets the clients take
/// plans from a shared counter until `--plans` have been sent, and measures.
async fn run_mode(
    client: &Client,
    mode: Mode,
    target: &str,
    args: &BenchArgs,
    template: &SubmitPlanRequest,
) -> anyhow::Result<Report> {
    let mut channels = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        channels.push(client.channel_to(target).await?);
    }
    // One unmeasured plan per connection, so connection setup is not counted as latency.
    let mut warm = JoinSet::new();
    for channel in &channels {
        let once = Arc::new(AtomicUsize::new(0));
        let work = Work {
            next: once,
            total: 1,
            template: template.clone(),
            timeout: args.client.timeout,
            authorization: client.authorization().cloned(),
        };
        warm.spawn(worker(channel.clone(), work));
    }
    let warm = collect(warm).await?;
    if let Some(err) = warm.first_error {
        bail!("the warm-up plan to {target} failed: {err}");
    }

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let work = Work {
        next,
        total: args.plans,
        template: template.clone(),
        timeout: args.client.timeout,
        authorization: client.authorization().cloned(),
    };
    let workers = spawn_workers(&channels, &work);
    let samples = collect(workers).await?;
    Ok(Report::new(mode, target, samples, started.elapsed()))
}

fn spawn_workers(channels: &[Channel], work: &Work) -> JoinSet<Samples> {
    let mut set = JoinSet::new();
    for channel in channels {
        set.spawn(worker(channel.clone(), work.clone()));
    }
    set
}

async fn collect(mut workers: JoinSet<Samples>) -> anyhow::Result<Samples> {
    let mut all = Samples::default();
    while let Some(samples) = workers.join_next().await {
        let samples = samples.context("a bench client panicked")?;
        all.latencies.extend(samples.latencies);
        all.identities += samples.identities;
        all.errors += samples.errors;
        all.first_error = all.first_error.or(samples.first_error);
    }
    Ok(all)
}

async fn worker(channel: Channel, work: Work) -> Samples {
    let mut client = PlanServiceClient::new(channel);
    let mut samples = Samples::default();
    while work.next.fetch_add(1, Ordering::Relaxed) < work.total {
        let mut plan = work.template.clone();
        plan.plan_id = format!("bench-{}", uuid::Uuid::new_v4());
        let mut request = Request::new(plan);
        request.set_timeout(work.timeout);
        if let Some(value) = &work.authorization {
            request.metadata_mut().insert(AUTHORIZATION, value.clone());
        }

        let started = Instant::now();
        match client.submit(request).await {
            Ok(response) => {
                samples.latencies.push(started.elapsed());
                let allocs = &response.get_ref().allocations;
                samples.identities += allocs.iter().map(|a| a.identities.len()).sum::<usize>();
            }
            Err(status) => {
                samples.errors += 1;
                samples.first_error.get_or_insert_with(|| describe(&status));
            }
        }
    }
    samples
}

impl Report {
    fn new(mode: Mode, target: &str, mut samples: Samples, elapsed: Duration) -> Report {
        samples.latencies.sort_unstable();
        let seconds = elapsed.as_secs_f64().max(f64::EPSILON);
        let ms = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        Report {
            mode: match mode {
                Mode::Direct => "direct",
                Mode::Forwarded => "forwarded",
                Mode::Both => "both",
            },
            target: target.to_owned(),
            plans: samples.latencies.len(),
            errors: samples.errors,
            seconds,
            plans_per_sec: samples.latencies.len() as f64 / seconds,
            identities_per_sec: samples.identities as f64 / seconds,
            p50_ms: ms(percentile(&samples.latencies, 0.50)),
            p99_ms: ms(percentile(&samples.latencies, 0.99)),
            max_ms: ms(samples.latencies.last().copied()),
            first_error: samples.first_error,
        }
    }
}

/// The nearest-rank percentile `q` (0 to 1) of sorted `values`.
fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn report_table(reports: &[Report]) -> String {
    let mut table = Table::new(&[
        "MODE",
        "TARGET",
        "PLANS",
        "ERRORS",
        "PLANS/S",
        "IDENTITIES/S",
        "P50",
        "P99",
        "MAX",
    ]);
    for r in reports {
        table.row(vec![
            r.mode.to_owned(),
            r.target.clone(),
            r.plans.to_string(),
            r.errors.to_string(),
            format!("{:.1}", r.plans_per_sec),
            format!("{:.1}", r.identities_per_sec),
            format!("{:.2}ms", r.p50_ms),
            format!("{:.2}ms", r.p99_ms),
            format!("{:.2}ms", r.max_ms),
        ]);
    }
    table.render()
}

/// The plan every bench request submits (with a fresh id): one group of `--tasks` tasks,
/// placed `--allocs-per-plan` times. Checked here so that bad flags fail before any traffic.
fn plan_template(args: &BenchArgs) -> anyhow::Result<Plan> {
    let at_least_one = [
        ("--plans", args.plans),
        ("--clients", args.clients),
        ("--tasks", args.tasks),
        ("--allocs-per-plan", args.allocs_per_plan),
    ];
    for (flag, value) in at_least_one {
        if value == 0 {
            bail!("{flag}: must be at least 1");
        }
    }
    if args.clients > MAX_CLIENTS {
        bail!("--clients: at most {MAX_CLIENTS}, got {}", args.clients);
    }
    let per_plan = args.tasks.saturating_mul(args.allocs_per_plan);
    if per_plan > MAX_IDENTITIES_PER_PLAN {
        bail!(
            "--tasks x --allocs-per-plan: {per_plan} identities per plan, more than the server's \
             limit of {MAX_IDENTITIES_PER_PLAN}"
        );
    }

    let group = TaskGroup {
        name: "bench".into(),
        tasks: (0..args.tasks)
            .map(|i| Task {
                name: format!("task-{i}"),
                identities: Vec::new(),
                vault: None,
                consul: None,
            })
            .collect(),
        services: Vec::new(),
        consul: None,
    };
    let plan = Plan {
        plan_id: PlanId("bench-template".into()),
        job: Job {
            namespace: "default".into(),
            id: "bench".into(),
            parent_id: None,
            groups: vec![group],
        },
        place: (0..args.allocs_per_plan)
            .map(|i| Placement {
                group: "bench".into(),
                node_id: format!("bench-client-{i}"),
            })
            .collect(),
        stop: Vec::new(),
    };
    plan.validate().context("the bench plan")?;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn bench_args(extra: &[&str]) -> BenchArgs {
        let argv = ["sigil", "bench"].iter().chain(extra).copied();
        match Cli::try_parse_from(argv)
            .expect("the command line parses")
            .command
        {
            Command::Bench(args) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(
            percentile(&values, 0.50),
            Some(Duration::from_millis(50)),
            "the median of 1..=100 ms"
        );
        assert_eq!(
            percentile(&values, 0.99),
            Some(Duration::from_millis(99)),
            "the 99th of 1..=100 ms"
        );
        assert_eq!(
            percentile(&values[..1], 0.99),
            Some(Duration::from_millis(1)),
            "one sample is every percentile"
        );
        assert_eq!(percentile(&[], 0.5), None, "no samples, no percentile");
    }

    #[test]
    fn the_template_places_the_requested_tasks_and_allocations() {
        let plan = plan_template(&bench_args(&["--tasks", "3", "--allocs-per-plan", "2"]))
            .expect("valid flags");
        assert_eq!(plan.place.len(), 2, "allocations per plan");
        assert_eq!(
            plan.identity_count(),
            6,
            "one identity per task per allocation"
        );
    }

    #[test]
    fn bad_flags_are_named_before_any_traffic() {
        let err = plan_template(&bench_args(&["--clients", "0"])).expect_err("zero clients");
        assert!(err.to_string().contains("--clients"), "{err}");
        let huge = bench_args(&["--tasks", "200", "--allocs-per-plan", "100"]);
        let err = plan_template(&huge).expect_err("too many identities");
        assert!(err.to_string().contains("--allocs-per-plan"), "{err}");
    }

    #[test]
    fn forwarded_mode_needs_a_follower_and_both_modes_pick_leader_then_follower() {
        let peer = |id, leader| Peer {
            node_id: id,
            address: format!("127.0.0.1:{id}"),
            voter: true,
            leader,
            matched_index: 0,
        };
        let single = [peer(1, true)];
        let err = targets(Mode::Forwarded, &single).expect_err("no follower");
        assert!(err.to_string().contains("follower"), "{err}");

        let three = [peer(1, false), peer(2, true), peer(3, false)];
        let picked: Vec<(Mode, u64)> = targets(Mode::Both, &three)
            .expect("leader and follower")
            .into_iter()
            .map(|(m, p)| (m, p.node_id))
            .collect();
        assert_eq!(
            picked,
            [(Mode::Direct, 2), (Mode::Forwarded, 1)],
            "the leader first, then a follower"
        );
    }
}
