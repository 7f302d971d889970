//! The CLI's gRPC client, used by every client command (`plan`, `identity`, `keyring`,
//! `operator raft`, `acl`, `bench`) and by `sigil dev`.
//!
//! It talks to the first server among `--address` that answers. When a server answers
//! `Unavailable` (no leader yet, leader unreachable, leadership moved, the server is gone), the
//! client retries the *same* request with exponential backoff, at the leader named in the
//! `x-sigil-leader` hint when there is one and at the next address otherwise, until `--timeout`
//! runs out. Resending the same request is what makes a retried plan safe: it keeps its
//! `plan_id`, so the leader returns the first result instead of placing twice.
//!
//! With `--token` (or `SIGIL_TOKEN`) every attempt, retries included, carries `authorization:
//! Bearer <token>`. The token is never printed or logged: its `Debug` is redacted and the
//! header value is marked sensitive. `Unauthenticated` and `PermissionDenied` are final, like
//! every answer but `Unavailable`: another server would give the same one.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use sigil_server::LEADER_HEADER;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};

/// The first pause between retries; each failure doubles it up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// The longest pause between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How long one connection attempt may take, so one dead address does not use up the budget.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The metadata key that carries the token.
pub const AUTHORIZATION: &str = "authorization";

/// Where client commands send their requests and how long they may take.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Server gRPC addresses (`host:port`), comma-separated; the first that answers is used.
    #[arg(
        long,
        global = true,
        env = "SIGIL_ADDR",
        default_value = "127.0.0.1:7400",
        value_delimiter = ','
    )]
    pub address: Vec<String>,

    /// How long the command may take, retries included (`10s`, `500ms`, `1m`).
    #[arg(long, global = true, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// The ACL token to call with: a secret id (`sigil acl bootstrap`, `sigil acl token
    /// create`) or a workload identity JWT. Prefer `SIGIL_TOKEN` over the flag, which other
    /// users can see in the process list.
    #[arg(
        long,
        global = true,
        env = "SIGIL_TOKEN",
        hide_env_values = true,
        value_name = "SECRET",
        value_parser = token_arg
    )]
    pub token: Option<Token>,
}

/// A token from `--token`. Its `Debug` is redacted, so a parsed command line can be printed.
/// It is checked when a client is built rather than by clap, whose errors echo the value.
#[derive(Clone)]
pub struct Token(String);

/// A connection to a cluster that retries `Unavailable` answers.
pub struct Client {
    /// Candidate addresses, `host:port`; leader hints are appended as they arrive.
    addrs: Vec<String>,
    /// The address the next attempt goes to.
    current: usize,
    channels: HashMap<String, Channel>,
    timeout: Duration,
    /// `Bearer <token>`, marked sensitive, sent with every attempt; `None` without a token.
    authorization: Option<MetadataValue<Ascii>>,
}

/// Exponential backoff: 50 ms, 100 ms, ... capped at one second.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl ClientArgs {
    /// A client over these addresses.
    pub fn connect(&self) -> anyhow::Result<Client> {
        Client::new(&self.address, self.timeout)?.with_token(self.token.as_ref())
    }
}

impl Token {
    /// A token from its text, as `sigil dev` and `bench --local` get it from the bootstrap.
    pub fn new(text: impl Into<String>) -> Token {
        Token(text.into())
    }

    /// The `authorization` header value, marked sensitive. Errors describe the token's problem
    /// without quoting it.
    pub fn header(&self) -> anyhow::Result<MetadataValue<Ascii>> {
        let text = self.0.trim();
        if text.is_empty() {
            bail!("--token (or SIGIL_TOKEN): empty; unset it, or give a secret id or a JWT");
        }
        let mut value: MetadataValue<Ascii> = format!("Bearer {text}").parse().map_err(|_| {
            anyhow::anyhow!(
                "--token (or SIGIL_TOKEN): has characters a gRPC header cannot carry; a token \
                 is a UUID or a JWT, both plain ASCII"
            )
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(redacted)")
    }
}

impl Client {
    /// A client over `addrs`; fails when an address is not `host:port`. Connects lazily.
    pub fn new(addrs: &[String], timeout: Duration) -> anyhow::Result<Client> {
        let addrs = addrs
            .iter()
            .map(|a| normalize_addr(a))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if addrs.is_empty() {
            bail!("--address: give at least one server address (host:port)");
        }
        if timeout.is_zero() {
            bail!("--timeout: must be more than zero");
        }
        Ok(Client {
            addrs,
            current: 0,
            channels: HashMap::new(),
            timeout,
            authorization: None,
        })
    }

    /// This client, sending `token` with every request; unchanged when `token` is `None`.
    pub fn with_token(mut self, token: Option<&Token>) -> anyhow::Result<Client> {
        self.authorization = token.map(Token::header).transpose()?;
        Ok(self)
    }

    /// The `authorization` value this client sends, for callers (the benchmark) that build
    /// requests on their own channels.
    pub fn authorization(&self) -> Option<&MetadataValue<Ascii>> {
        self.authorization.as_ref()
    }

    /// Sends `request` with `rpc`, retrying `Unavailable` answers as the module describes. Any
    /// other error ends the call as `<code>: <message>`.
    pub async fn call<Req, Resp, F, Fut>(
        &mut self,
        request: Req,
        mut rpc: F,
    ) -> anyhow::Result<Resp>
    where
        Req: Clone,
        F: FnMut(Channel, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        let deadline = Instant::now() + self.timeout;
        let mut backoff = Backoff::new();
        let mut attempts = 0u32;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let addr = self.addrs[self.current].clone();
            attempts += 1;
            let status = match self.attempt(&addr, &request, remaining, &mut rpc).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) if status.code() == Code::Unavailable => status,
                Err(status) if status.code() == Code::Unauthenticated => {
                    bail!(self.unauthenticated(&status))
                }
                Err(status) => bail!(describe(&status)),
            };

            self.channels.remove(&addr);
            let hint = leader_hint(&status);
            tracing::debug!(
                %addr, attempts, leader_hint = hint.as_deref(), reason = status.message(),
                "server unavailable; retrying"
            );
            match hint {
                Some(leader) => self.point_at(leader),
                None => self.current = (self.current + 1) % self.addrs.len(),
            }

            let pause = backoff.next();
            if Instant::now() + pause >= deadline {
                bail!(
                    "{} (gave up after {attempts} attempts within {}; tried {})",
                    describe(&status),
                    humantime::format_duration(self.timeout),
                    self.addrs.join(", ")
                );
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// A connected channel to `addr`, for callers (the benchmark) that drive one server without
    /// retries; fails at once when nothing answers there.
    pub async fn channel_to(&self, addr: &str) -> anyhow::Result<Channel> {
        let addr = normalize_addr(addr)?;
        let endpoint = endpoint(&addr, self.timeout)?;
        endpoint
            .connect()
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to {addr}: {}", error_chain(&e)))
    }

    async fn attempt<Req, Resp, F, Fut>(
        &mut self,
        addr: &str,
        request: &Req,
        remaining: Duration,
        rpc: &mut F,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Clone,
        F: FnMut(Channel, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        let channel = self.channel(addr, remaining)?;
        let mut request = Request::new(request.clone());
        // The server bounds its own work (forwarding, waiting for commit) by this deadline.
        request.set_timeout(remaining);
        if let Some(value) = &self.authorization {
            request.metadata_mut().insert(AUTHORIZATION, value.clone());
        }
        match tokio::time::timeout(remaining, rpc(channel, request)).await {
            Ok(result) => result,
            Err(_) => Err(Status::deadline_exceeded(format!(
                "{addr} did not answer within {}",
                humantime::format_duration(self.timeout)
            ))),
        }
    }

    /// A channel that connects on first use: an address where nothing listens then fails the
    /// call with `Unavailable`, which moves the client to the next address like any other.
    fn channel(&mut self, addr: &str, remaining: Duration) -> Result<Channel, Status> {
        if let Some(channel) = self.channels.get(addr) {
            return Ok(channel.clone());
        }
        let endpoint =
            endpoint(addr, remaining).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let channel = endpoint.connect_lazy();
        self.channels.insert(addr.to_owned(), channel.clone());
        Ok(channel)
    }

    /// An `Unauthenticated` answer, with a hint when the cause is that no token was given.
    fn unauthenticated(&self, status: &Status) -> String {
        match self.authorization {
            Some(_) => describe(status),
            None => format!("{} (pass --token or set SIGIL_TOKEN)", describe(status)),
        }
    }

    fn point_at(&mut self, leader: String) {
        self.current = match self.addrs.iter().position(|a| *a == leader) {
            Some(i) => i,
            None => {
                self.addrs.push(leader);
                self.addrs.len() - 1
            }
        };
    }
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            next: FIRST_BACKOFF,
        }
    }

    fn next(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        pause
    }
}

/// Wraps `--token` without checking it; [`Token::header`] checks it without quoting it.
fn token_arg(text: &str) -> Result<Token, Infallible> {
    Ok(Token(text.to_owned()))
}

fn endpoint(addr: &str, remaining: Duration) -> anyhow::Result<Endpoint> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .with_context(|| format!("address {addr:?} is not a valid URI authority"))?;
    Ok(endpoint
        .connect_timeout(remaining.min(CONNECT_TIMEOUT))
        .tcp_nodelay(true))
}

/// `<code>: <message>`, the form in which every failed call is reported.
pub fn describe(status: &Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

/// The leader address a server put in an `Unavailable` answer, if any.
fn leader_hint(status: &Status) -> Option<String> {
    let value = status.metadata().get(LEADER_HEADER)?.to_str().ok()?;
    normalize_addr(value).ok()
}

/// `host:port` from a user- or server-given address, which may carry an `http://` prefix.
fn normalize_addr(addr: &str) -> anyhow::Result<String> {
    let trimmed = addr.trim();
    let bare = trimmed
        .strip_prefix("http://")
        .unwrap_or(trimmed)
        .trim_end_matches('/');
    let (host, port) = bare
        .rsplit_once(':')
        .with_context(|| format!("address {addr:?} is not host:port"))?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        bail!("address {addr:?} is not host:port with a port from 1 to 65535");
    }
    Ok(bare.to_owned())
}

/// An error and its sources on one line; tonic's transport errors say little at the top.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_50ms_and_stops_at_one_second() {
        let mut backoff = Backoff::new();
        let pauses: Vec<u64> = (0..7).map(|_| backoff.next().as_millis() as u64).collect();
        assert_eq!(
            pauses,
            [50, 100, 200, 400, 800, 1000, 1000],
            "50 ms doubling, capped at 1 s"
        );
    }

    #[test]
    fn addresses_are_normalized_and_bad_ones_named() {
        assert_eq!(
            normalize_addr(" http://127.0.0.1:7400/ ").unwrap(),
            "127.0.0.1:7400",
            "the scheme and trailing slash are dropped"
        );
        assert_eq!(
            normalize_addr("[::1]:7400").unwrap(),
            "[::1]:7400",
            "IPv6 literals keep their brackets"
        );
        let err = normalize_addr("localhost").expect_err("no port");
        assert!(
            err.to_string().contains("\"localhost\""),
            "names the address: {err}"
        );
        let err = normalize_addr("host:99999").expect_err("port out of range");
        assert!(
            err.to_string().contains("host:99999"),
            "names the address: {err}"
        );
    }

    #[test]
    fn a_leader_hint_moves_the_client_and_unknown_leaders_are_added() {
        let mut client = Client::new(&["a:1".into(), "b:2".into()], Duration::from_secs(1))
            .expect("valid addresses");
        client.point_at("b:2".into());
        assert_eq!(client.current, 1, "a known leader is reused");
        client.point_at("c:3".into());
        assert_eq!(
            client.addrs,
            ["a:1", "b:2", "c:3"],
            "an unknown leader is appended"
        );
        assert_eq!(client.current, 2, "and tried next");
    }

    #[test]
    fn the_leader_hint_is_read_from_unavailable_metadata() {
        let mut status = Status::unavailable("not the leader");
        assert_eq!(leader_hint(&status), None, "no hint without metadata");
        status
            .metadata_mut()
            .insert(LEADER_HEADER, "127.0.0.1:7401".parse().unwrap());
        assert_eq!(
            leader_hint(&status).as_deref(),
            Some("127.0.0.1:7401"),
            "the hint is the header's address"
        );
    }

    #[tokio::test]
    async fn errors_other_than_unavailable_end_the_call_with_code_and_message() {
        let mut client =
            Client::new(&["127.0.0.1:9".into()], Duration::from_secs(5)).expect("valid address");
        let mut calls = 0;
        let err = client
            .call((), |_, _| {
                calls += 1;
                async {
                    Err::<Response<()>, _>(Status::invalid_argument("job.id: must not be empty"))
                }
            })
            .await
            .expect_err("invalid argument is final");
        assert_eq!(
            err.to_string(),
            "InvalidArgument: job.id: must not be empty",
            "code and message, nothing else"
        );
        assert_eq!(calls, 1, "a final error is not retried");
    }

    #[tokio::test]
    async fn unavailable_is_retried_with_the_same_request_until_it_succeeds() {
        let mut client =
            Client::new(&["127.0.0.1:9".into()], Duration::from_secs(5)).expect("valid address");
        let mut seen = Vec::new();
        // The closure stands in for the server; the lazy channel it gets is never used.
        let result = client
            .call("plan-7".to_owned(), |_channel, request: Request<String>| {
                seen.push(request.into_inner());
                let answer = if seen.len() < 3 {
                    Err(Status::unavailable("no leader is elected yet"))
                } else {
                    Ok(Response::new(seen.len()))
                };
                async move { answer }
            })
            .await;
        assert_eq!(
            result.expect("the third attempt succeeds"),
            3,
            "the answer of the third attempt is returned"
        );
        assert_eq!(
            seen,
            ["plan-7", "plan-7", "plan-7"],
            "every retry resends the same request"
        );
    }

    #[tokio::test]
    async fn unavailable_until_the_timeout_reports_the_last_reason_and_the_addresses() {
        let addrs = ["127.0.0.1:9".to_owned(), "127.0.0.1:10".to_owned()];
        let mut client = Client::new(&addrs, Duration::from_secs(2)).expect("valid addresses");
        let mut targets = Vec::new();
        let err = client
            .call((), |_, _| {
                targets.push(());
                async { Err::<Response<()>, _>(Status::unavailable("no leader is elected yet")) }
            })
            .await
            .expect_err("never available");
        let text = err.to_string();
        assert!(
            text.starts_with("Unavailable: no leader is elected yet"),
            "{text}"
        );
        assert!(
            text.contains("127.0.0.1:9, 127.0.0.1:10"),
            "names the addresses: {text}"
        );
        assert!(
            targets.len() >= 2,
            "both addresses were tried: {} attempts",
            targets.len()
        );
    }

    #[tokio::test]
    async fn the_token_is_sent_with_every_attempt_including_retries() {
        let token = Token::new("7d9c4a4e-36d2-4a53-9b8f-1f2f0a6c1e55");
        let mut client = Client::new(&["127.0.0.1:9".into()], Duration::from_secs(5))
            .expect("valid address")
            .with_token(Some(&token))
            .expect("a UUID is a valid token");
        let mut headers = Vec::new();
        let result = client
            .call((), |_channel, request: Request<()>| {
                let header = request.metadata().get(AUTHORIZATION).cloned();
                headers.push(header.map(|v| v.to_str().unwrap_or_default().to_owned()));
                let answer = if headers.len() < 2 {
                    Err(Status::unavailable("leadership moved"))
                } else {
                    Ok(Response::new(()))
                };
                async move { answer }
            })
            .await;
        result.expect("the retry succeeds");
        let expected = Some("Bearer 7d9c4a4e-36d2-4a53-9b8f-1f2f0a6c1e55".to_owned());
        assert_eq!(
            headers,
            [expected.clone(), expected],
            "the first attempt and the retry both carry the bearer token"
        );
    }

    #[tokio::test]
    async fn refused_credentials_are_final_and_reported_by_code() {
        let cases = [
            (
                Status::permission_denied("needs submit-job"),
                None,
                "PermissionDenied: ",
            ),
            (
                Status::unauthenticated("no token"),
                None,
                "Unauthenticated: no token (pass --token or set SIGIL_TOKEN)",
            ),
            (
                Status::unauthenticated("unknown token"),
                Some(Token::new("b1946ac9-2d3b-4c52-8f36-6c8e1b2f3a4d")),
                "Unauthenticated: unknown token",
            ),
        ];
        for (status, token, expected) in cases {
            let mut client = Client::new(&["127.0.0.1:9".into()], Duration::from_secs(5))
                .expect("valid address")
                .with_token(token.as_ref())
                .expect("valid token");
            let mut calls = 0;
            let err = client
                .call((), |_, _| {
                    calls += 1;
                    let status = status.clone();
                    async move { Err::<Response<()>, _>(status) }
                })
                .await
                .expect_err("refused credentials end the call");
            let text = err.to_string();
            assert!(text.starts_with(expected), "{expected:?} starts {text:?}");
            assert_eq!(calls, 1, "{:?} is not retried", status.code());
        }
    }

    #[test]
    fn tokens_are_never_shown_and_bad_ones_are_refused_without_quoting_them() {
        let token = Token::new("s3cr3t-value");
        assert_eq!(
            format!("{token:?}"),
            "Token(redacted)",
            "Debug hides the token"
        );
        let header = token.header().expect("ASCII is a valid header");
        assert!(header.is_sensitive(), "the header is marked sensitive");

        let err = Token::new("  ").header().expect_err("empty");
        assert!(err.to_string().contains("empty"), "{err}");
        let err = Token::new("s3cr3t\nvalue").header().expect_err("a newline");
        let text = err.to_string();
        assert!(text.contains("--token"), "the flag is named: {text}");
        assert!(!text.contains("s3cr3t"), "the token is not quoted: {text}");
    }
}
