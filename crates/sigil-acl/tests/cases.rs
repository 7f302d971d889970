//! Data-driven ACL evaluation tests: runs every case file in `tests/cases/`.
//!
//! Each case names some policies, optionally a workload, and a list of checks with the expected
//! answer. Every failing check is reported with its file, line and case name, all at once.
//!
//! To accept new behaviour, run `UPDATE_EXPECT=1 cargo test -p sigil-acl --test cases`: each
//! `check` line's answer is rewritten to what the engine now says, and the change is reviewed
//! as a diff of the case files before it is committed.
//!
//! Case file format (`#` starts a comment line):
//!
//! ```text
//! case <a sentence saying what the case shows>
//! policy <name> [attach <namespace>[/<job>[/<group>[/<task>]]]]
//!     <policy text, HCL or JSON, indented>
//! workload task <namespace>/<job>/<group>/<task>    (or: workload service <ns>/<job>/<group>)
//! management                                        (the ACL is the management ACL)
//! check namespace <namespace> <capability> => allow|deny
//! check operator <capability> => allow|deny
//! check variable <namespace> <path> <list|read|write|destroy> => allow|deny
//! check service <namespace> => allow|deny
//! check attached <policy name> => yes|no
//! ```
//!
//! Without `workload`, every policy is compiled as a token's. With it, only the policies whose
//! `attach` association applies to the workload are compiled, plus the implicit workload grants.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use sigil_acl::{
    Acl, AclPolicy, JobAcl, PolicyRules, VariableOp, WorkloadScope, workload_policies,
};

/// One case, as read from a file.
struct Case {
    name: String,
    line: usize,
    policies: Vec<PolicySource>,
    workload: Option<WorkloadScope>,
    management: bool,
    checks: Vec<Check>,
}

/// A `policy` line and the indented text below it.
struct PolicySource {
    name: String,
    attach: Option<JobAcl>,
    text: String,
    line: usize,
}

/// A `check` line.
struct Check {
    /// Zero-based index of the line in the file, for rewriting.
    index: usize,
    query: String,
    expected: Option<String>,
}

#[test]
fn every_case_file_gives_the_expected_answers() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some_and(|v| v == "1");
    let mut failures = String::new();
    let mut checked = 0;

    for path in case_files() {
        let text = fs::read_to_string(&path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();

        let cases = match parse_cases(&lines) {
            Ok(cases) => cases,
            Err(err) => {
                writeln!(failures, "{file}: {err}").unwrap();
                continue;
            }
        };
        for case in &cases {
            checked += run_case(case, &file, update, &mut lines, &mut failures);
        }

        if update {
            let new_text = lines.join("\n") + "\n";
            if new_text != text {
                fs::write(&path, new_text).unwrap();
                eprintln!("rewrote {}", path.display());
            }
        }
    }

    assert!(
        checked > 0,
        "no checks were found in {}",
        cases_dir().display()
    );
    assert!(failures.is_empty(), "failing checks:\n{failures}");
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases")
}

fn case_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(cases_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "txt"))
        .collect();
    files.sort();
    files
}

/// Compiles the case's ACL and runs its checks; returns how many ran.
fn run_case(
    case: &Case,
    file: &str,
    update: bool,
    lines: &mut [String],
    failures: &mut String,
) -> usize {
    let context = format!("{file}:{} case {:?}", case.line, case.name);
    let policies = match build_policies(case) {
        Ok(policies) => policies,
        Err(err) => {
            writeln!(failures, "{context}: {err}").unwrap();
            return 0;
        }
    };
    let acl = compile(case, &policies);

    for check in &case.checks {
        let actual = match answer(&acl, &policies, case, &check.query) {
            Ok(actual) => actual,
            Err(err) => {
                writeln!(failures, "{file}:{}: {err}", check.index + 1).unwrap();
                continue;
            }
        };
        if update {
            lines[check.index] = format!("check {} => {actual}", check.query);
        } else if check.expected.as_deref() != Some(actual) {
            let expected = check.expected.as_deref().unwrap_or("(nothing)");
            let line = check.index + 1;
            writeln!(
                failures,
                "{file}:{line} case {:?}: `{}` expected {expected}, got {actual}",
                case.name, check.query
            )
            .unwrap();
        }
    }
    case.checks.len()
}

fn build_policies(case: &Case) -> Result<Vec<AclPolicy>, String> {
    let mut policies = Vec::new();
    for source in &case.policies {
        let rules = PolicyRules::parse(&source.text)
            .map_err(|err| format!("policy {:?} (line {}): {err}", source.name, source.line))?;
        let policy = AclPolicy::new(&source.name, "", rules, source.attach.clone())
            .map_err(|err| format!("policy {:?} (line {}): {err}", source.name, source.line))?;
        policies.push(policy);
    }
    Ok(policies)
}

fn compile(case: &Case, policies: &[AclPolicy]) -> Acl {
    if case.management {
        return Acl::management();
    }
    match &case.workload {
        Some(scope) => Acl::for_workload(&workload_policies(policies, scope), scope),
        None => Acl::compile(
            &policies
                .iter()
                .map(|policy| &policy.rules)
                .collect::<Vec<_>>(),
        ),
    }
}

/// Evaluates one check query and returns its answer word.
fn answer(
    acl: &Acl,
    policies: &[AclPolicy],
    case: &Case,
    query: &str,
) -> Result<&'static str, String> {
    let words: Vec<&str> = query.split_whitespace().collect();
    let verdict = |allowed: bool| if allowed { "allow" } else { "deny" };
    match words.as_slice() {
        ["namespace", namespace, cap] => Ok(verdict(acl.allow_namespace_op(namespace, cap))),
        ["operator", cap] => Ok(verdict(acl.allow_operator_op(cap))),
        ["variable", namespace, path, op] => {
            let op = VariableOp::parse(op).ok_or_else(|| format!("unknown variable op {op:?}"))?;
            Ok(verdict(acl.allow_variable_op(namespace, path, op)))
        }
        ["service", namespace] => Ok(verdict(acl.allow_service_read(namespace))),
        ["attached", name] => {
            let scope = case
                .workload
                .as_ref()
                .ok_or("`attached` needs a workload")?;
            let policy = policies
                .iter()
                .find(|policy| policy.name == *name)
                .ok_or_else(|| format!("no policy named {name:?}"))?;
            Ok(if policy.applies_to(scope) {
                "yes"
            } else {
                "no"
            })
        }
        _ => Err(format!("cannot read check {query:?}")),
    }
}

/// Reads every case of a file.
fn parse_cases(lines: &[String]) -> Result<Vec<Case>, String> {
    let mut cases: Vec<Case> = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index].trim_end();
        let at = index + 1;
        index += 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix("case ") {
            cases.push(Case {
                name: name.trim().to_owned(),
                line: at,
                policies: Vec::new(),
                workload: None,
                management: false,
                checks: Vec::new(),
            });
            continue;
        }
        let case = cases
            .last_mut()
            .ok_or(format!("line {at}: expected `case` first"))?;
        if let Some(rest) = line.strip_prefix("policy ") {
            let (text, next) = indented_block(lines, index);
            index = next;
            case.policies.push(policy_source(rest, text, at)?);
        } else if let Some(rest) = line.strip_prefix("workload ") {
            case.workload = Some(workload(rest).map_err(|err| format!("line {at}: {err}"))?);
        } else if line == "management" {
            case.management = true;
        } else if let Some(rest) = line.strip_prefix("check ") {
            let (query, expected) = match rest.split_once("=>") {
                Some((query, expected)) => (query, Some(expected.trim().to_owned())),
                None => (rest, None),
            };
            case.checks.push(Check {
                index: at - 1,
                query: query.trim().to_owned(),
                expected,
            });
        } else {
            return Err(format!("line {at}: cannot read {line:?}"));
        }
    }
    Ok(cases)
}

/// The indented lines starting at `start`, dedented; and the index of the first line after.
fn indented_block(lines: &[String], start: usize) -> (String, usize) {
    let mut end = start;
    while end < lines.len() && (lines[end].starts_with(' ') || lines[end].trim().is_empty()) {
        end += 1;
    }
    let body: Vec<&str> = lines[start..end]
        .iter()
        .map(|line| line.trim_start())
        .collect();
    (body.join("\n"), end)
}

fn policy_source(rest: &str, text: String, line: usize) -> Result<PolicySource, String> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let attach = match words.as_slice() {
        [_] => None,
        [_, "attach", target] => Some(job_acl(target)),
        _ => return Err(format!("line {line}: cannot read policy line {rest:?}")),
    };
    Ok(PolicySource {
        name: words[0].to_owned(),
        attach,
        text,
        line,
    })
}

fn job_acl(target: &str) -> JobAcl {
    let mut parts = target.split('/').map(str::to_owned);
    JobAcl {
        namespace: parts.next().unwrap_or_default(),
        job: parts.next(),
        group: parts.next(),
        task: parts.next(),
    }
}

fn workload(rest: &str) -> Result<WorkloadScope, String> {
    let (kind, target) = rest.split_once(' ').ok_or("expected `task` or `service`")?;
    let parts: Vec<&str> = target.trim().split('/').collect();
    match (kind, parts.as_slice()) {
        ("task", [namespace, job, group, task]) => Ok(scope(namespace, job, group, Some(task))),
        ("service", [namespace, job, group]) => Ok(scope(namespace, job, group, None)),
        _ => Err(format!("cannot read workload {rest:?}")),
    }
}

fn scope(namespace: &str, job: &str, group: &str, task: Option<&str>) -> WorkloadScope {
    WorkloadScope {
        namespace: namespace.to_owned(),
        job: job.to_owned(),
        group: group.to_owned(),
        task: task.map(str::to_owned),
    }
}
