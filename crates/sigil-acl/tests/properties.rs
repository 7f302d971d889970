//! Property tests of ACL evaluation over randomly generated policy sets.
//!
//! Properties (each test below checks the one with its number):
//!
//! 1. Deny always wins: adding a policy that denies a namespace, a variables path or the
//!    operator capabilities by exact key leaves nothing allowed there, for tokens and for
//!    workloads (whose implicit read on their own paths included), wherever it is inserted.
//! 2. Adding a policy without `deny` never removes a permission, when the added policy names
//!    only namespaces and paths the set already names. (A rule for a new, more specific key, an
//!    exact namespace or a closer glob, is chosen instead of a broader one by design, so it can
//!    narrow what that broader key granted; `tests/cases/30_globs.txt` shows that.)
//! 3. The order of policies never changes the compiled ACL.
//! 4. Stored rules survive their round trips: canonical HCL and the JSON storage form.
//!
//! Policies are generated as HCL text and parsed, so the grammar is exercised too.

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use sigil_acl::{
    Acl, NamespaceCapability, OperatorCapability, PolicyRules, VariableOp, WorkloadScope,
};

const NS_LABELS: &[&str] = &[
    "default", "prod", "prod-web", "*", "prod-*", "*-web", "team-*",
];
const NS_SUBJECTS: &[&str] = &["default", "prod", "prod-web", "dev-web", "team-a", "other"];
const PATHS: &[&str] = &[
    "app/config",
    "app/*",
    "*",
    "nomad/jobs",
    "nomad/jobs/web",
    "nomad/jobs/web/*",
    "secret/db",
];
const PATH_SUBJECTS: &[&str] = &[
    "app/config",
    "app/x",
    "nomad/jobs",
    "nomad/jobs/web",
    "nomad/jobs/web/api",
    "nomad/jobs/web/api/server",
    "secret/db",
];
const NS_POLICIES: &[&str] = &["read", "write", "scale"];
const NS_CAPS: &[&str] = &[
    "list-jobs",
    "read-job",
    "submit-job",
    "read-logs",
    "scale-job",
    "alloc-exec",
    "host-volume-write",
    "csi-read-volume",
];
const VAR_CAPS: &[&str] = &["list", "read", "write", "destroy"];
const OP_POLICIES: &[&str] = &["read", "write"];
const OP_CAPS: &[&str] = &[
    "license-read",
    "keyring-read",
    "keyring-rotate",
    "raft-read",
];
const VAR_OPS: [VariableOp; 4] = [
    VariableOp::List,
    VariableOp::Read,
    VariableOp::Write,
    VariableOp::Destroy,
];

/// A generated `namespace` block.
#[derive(Clone, Debug)]
struct NamespaceBlock {
    label: &'static str,
    policy: Option<&'static str>,
    capabilities: Vec<&'static str>,
    paths: Vec<(&'static str, Vec<&'static str>)>,
}

/// A generated `operator` block.
#[derive(Clone, Debug)]
struct OperatorBlock {
    policy: Option<&'static str>,
    capabilities: Vec<&'static str>,
}

/// A generated policy document.
#[derive(Clone, Debug)]
struct Policy {
    namespaces: Vec<NamespaceBlock>,
    operator: Option<OperatorBlock>,
}

/// Every decision an ACL makes over the generated vocabulary, in a fixed order.
type Decisions = Vec<(String, bool)>;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Property 1. The denying policy is inserted at a random position so that neither order
    /// nor being last can explain the result.
    #[test]
    fn deny_on_an_exact_key_always_wins(
        policies in vec(policy(true), 0..4),
        namespace in select(NS_SUBJECTS),
        path in select(PATH_SUBJECTS),
        position in any::<prop::sample::Index>(),
    ) {
        let denials = [
            format!("namespace \"{namespace}\" {{\n  policy = \"deny\"\n}}\n"),
            format!(
                "namespace \"{namespace}\" {{\n  variables {{\n    path \"{path}\" {{\n      \
                 capabilities = [\"deny\"]\n    }}\n  }}\n}}\n"
            ),
            "operator {\n  capabilities = [\"deny\"]\n}\n".to_owned(),
        ];
        let mut rules = parse_all(&policies);
        for denial in &denials {
            let at = position.index(rules.len() + 1);
            rules.insert(at, PolicyRules::parse(denial).unwrap());
        }
        let refs: Vec<&PolicyRules> = rules.iter().collect();

        for acl in [Acl::compile(&refs), Acl::for_workload(&refs, &workload())] {
            for cap in NamespaceCapability::ALL {
                prop_assert!(
                    !acl.allow_namespace(namespace, *cap),
                    "{cap} allowed in denied namespace {namespace}"
                );
            }
            for op in VAR_OPS {
                prop_assert!(
                    !acl.allow_variable_op(namespace, path, op),
                    "{op} allowed on denied path {namespace}/{path}"
                );
            }
            for cap in OperatorCapability::ALL {
                prop_assert!(!acl.allow_operator(*cap), "operator {cap} allowed despite deny");
            }
        }
    }

    /// Property 2. Every decision that was "allow" before the extension must still be
    /// "allow" after it, for a token and for a workload.
    #[test]
    fn adding_a_policy_without_deny_over_known_keys_never_removes_a_permission(
        (policies, extension) in policy_set_and_extension(),
    ) {
        let before = parse_all(&policies);
        let mut after = before.clone();
        after.push(PolicyRules::parse(&render(&extension)).unwrap());
        prop_assert!(!after.last().unwrap().has_deny(), "the extension must not deny");

        let before_refs: Vec<&PolicyRules> = before.iter().collect();
        let after_refs: Vec<&PolicyRules> = after.iter().collect();
        let pairs = [
            (Acl::compile(&before_refs), Acl::compile(&after_refs)),
            (
                Acl::for_workload(&before_refs, &workload()),
                Acl::for_workload(&after_refs, &workload()),
            ),
        ];
        for (old, new) in pairs {
            for ((check, was), (_, now)) in decisions(&old).into_iter().zip(decisions(&new)) {
                prop_assert!(!was || now, "{check} was allowed and no longer is");
            }
        }
    }

    /// Property 3. Reversing is enough: any permutation is a sequence of such reorderings of
    /// sub-slices, and compilation treats the slice as a multiset.
    #[test]
    fn policy_order_never_changes_the_compiled_acl(policies in vec(policy(true), 0..5)) {
        let rules = parse_all(&policies);
        let forward: Vec<&PolicyRules> = rules.iter().collect();
        let backward: Vec<&PolicyRules> = rules.iter().rev().collect();
        prop_assert_eq!(Acl::compile(&forward), Acl::compile(&backward), "token ACLs differ");
        prop_assert_eq!(
            decisions(&Acl::for_workload(&forward, &workload())),
            decisions(&Acl::for_workload(&backward, &workload())),
            "workload decisions differ"
        );
    }

    /// Property 4.
    #[test]
    fn rules_round_trip_through_canonical_hcl_and_json(policy in policy(true)) {
        let rules = PolicyRules::parse(&render(&policy)).unwrap();
        let from_hcl = PolicyRules::parse(&rules.to_hcl());
        prop_assert_eq!(from_hcl.as_ref(), Ok(&rules), "canonical HCL:\n{}", rules.to_hcl());
        let stored = serde_json::to_string(&rules).unwrap();
        let restored: PolicyRules = serde_json::from_str(&stored).unwrap();
        prop_assert_eq!(restored, rules, "JSON storage form: {}", stored);
    }
}

fn workload() -> WorkloadScope {
    WorkloadScope {
        namespace: "default".to_owned(),
        job: "web".to_owned(),
        group: "api".to_owned(),
        task: Some("server".to_owned()),
    }
}

fn parse_all(policies: &[Policy]) -> Vec<PolicyRules> {
    policies
        .iter()
        .map(|policy| PolicyRules::parse(&render(policy)).unwrap())
        .collect()
}

fn decisions(acl: &Acl) -> Decisions {
    let mut out = Vec::new();
    for namespace in NS_SUBJECTS {
        for cap in NamespaceCapability::ALL {
            out.push((
                format!("{namespace} {cap}"),
                acl.allow_namespace(namespace, *cap),
            ));
        }
        for path in PATH_SUBJECTS {
            for op in VAR_OPS {
                let allowed = acl.allow_variable_op(namespace, path, op);
                out.push((format!("{namespace} {path} {op}"), allowed));
            }
        }
        out.push((
            format!("{namespace} services"),
            acl.allow_service_read(namespace),
        ));
    }
    for cap in OperatorCapability::ALL {
        out.push((format!("operator {cap}"), acl.allow_operator(*cap)));
    }
    out
}

/// A policy document; with `allow_deny`, any block may deny.
fn policy(allow_deny: bool) -> impl Strategy<Value = Policy> {
    let paths = btree_map(select(PATHS), var_caps(allow_deny), 0..3);
    let block = (ns_policy(allow_deny), ns_caps(allow_deny), paths);
    let namespaces = btree_map(select(NS_LABELS), block, 0..4);
    let operator = option::of(operator_block(allow_deny));
    (namespaces, operator).prop_map(|(namespaces, operator)| Policy {
        namespaces: namespaces
            .into_iter()
            .map(|(label, (policy, capabilities, paths))| NamespaceBlock {
                label,
                policy,
                capabilities,
                paths: paths.into_iter().collect(),
            })
            .collect(),
        operator,
    })
}

/// A set of policies, and a policy without deny that names only their keys.
fn policy_set_and_extension() -> impl Strategy<Value = (Vec<Policy>, Policy)> {
    vec(policy(true), 1..4).prop_flat_map(|policies| {
        let extension = extension_of(&policies);
        (Just(policies), extension)
    })
}

fn extension_of(policies: &[Policy]) -> impl Strategy<Value = Policy> + use<> {
    let mut keys: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for block in policies.iter().flat_map(|policy| &policy.namespaces) {
        let index = match keys.iter().position(|(label, _)| *label == block.label) {
            Some(index) => index,
            None => {
                keys.push((block.label, Vec::new()));
                keys.len() - 1
            }
        };
        for (path, _) in &block.paths {
            if !keys[index].1.contains(path) {
                keys[index].1.push(path);
            }
        }
    }

    let blocks: Vec<BoxedStrategy<Option<NamespaceBlock>>> = keys
        .into_iter()
        .map(|(label, paths)| {
            let count = paths.len();
            let chosen = (subsequence(paths, 0..=count), vec(var_caps(false), count));
            (any::<bool>(), ns_policy(false), ns_caps(false), chosen)
                .prop_map(move |(present, policy, capabilities, (paths, caps))| {
                    present.then(|| NamespaceBlock {
                        label,
                        policy,
                        capabilities,
                        paths: paths.into_iter().zip(caps).collect(),
                    })
                })
                .boxed()
        })
        .collect();
    (blocks, option::of(operator_block(false))).prop_map(|(blocks, operator)| Policy {
        namespaces: blocks.into_iter().flatten().collect(),
        operator,
    })
}

fn ns_policy(allow_deny: bool) -> impl Strategy<Value = Option<&'static str>> {
    option::of(select(with_deny(NS_POLICIES, allow_deny)))
}

fn ns_caps(allow_deny: bool) -> impl Strategy<Value = Vec<&'static str>> {
    let pool = with_deny(NS_CAPS, allow_deny);
    let len = pool.len();
    subsequence(pool, 0..=len)
}

fn var_caps(allow_deny: bool) -> impl Strategy<Value = Vec<&'static str>> {
    let pool = with_deny(VAR_CAPS, allow_deny);
    let len = pool.len();
    subsequence(pool, 0..=len)
}

fn operator_block(allow_deny: bool) -> impl Strategy<Value = OperatorBlock> {
    let pool = with_deny(OP_CAPS, allow_deny);
    let len = pool.len();
    (
        option::of(select(with_deny(OP_POLICIES, allow_deny))),
        subsequence(pool, 0..=len),
    )
        .prop_map(|(policy, capabilities)| OperatorBlock {
            policy,
            capabilities,
        })
}

fn with_deny(pool: &[&'static str], allow_deny: bool) -> Vec<&'static str> {
    let mut pool = pool.to_vec();
    if allow_deny {
        pool.push("deny");
    }
    pool
}

/// Renders a generated policy as HCL; a policy with no blocks becomes an empty operator block,
/// which grants nothing, so that every document is valid.
fn render(policy: &Policy) -> String {
    let mut text = String::new();
    for block in &policy.namespaces {
        text += &format!("namespace \"{}\" {{\n", block.label);
        if let Some(shorthand) = block.policy {
            text += &format!("  policy = \"{shorthand}\"\n");
        }
        text += &format!("  capabilities = {}\n", list(&block.capabilities));
        if !block.paths.is_empty() {
            text += "  variables {\n";
            for (path, caps) in &block.paths {
                text += &format!(
                    "    path \"{path}\" {{\n      capabilities = {}\n    }}\n",
                    list(caps)
                );
            }
            text += "  }\n";
        }
        text += "}\n";
    }
    match &policy.operator {
        Some(operator) => {
            text += "operator {\n";
            if let Some(shorthand) = operator.policy {
                text += &format!("  policy = \"{shorthand}\"\n");
            }
            text += &format!("  capabilities = {}\n}}\n", list(&operator.capabilities));
        }
        None if policy.namespaces.is_empty() => text += "operator {}\n",
        None => {}
    }
    text
}

fn list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("\"{item}\"")).collect();
    format!("[{}]", quoted.join(", "))
}
