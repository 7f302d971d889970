//! The compiled ACL: the union of a token's or workload's policies, and the checks every
//! authorized request makes against it.
//!
//! The server compiles an [`Acl`] once per resolved token or verified workload identity and
//! calls the `allow_*` methods from each handler; WhoAmI reports [`Acl::summary`]. Evaluation is
//! lenient: anything the grammar would reject (an unknown capability name asked for) is simply
//! not granted.
//!
//! Rules of evaluation (the tests in `tests/cases/` check each one):
//!
//! 1. Policies are unioned per key: a namespace label, a namespace and path pair, or the
//!    operator block. A `deny` in any policy for a key overrides every grant for that key.
//!    (Nomad unions variables path sets without letting one policy's `deny` cancel another
//!    policy's grant on the same path; Sigil lets `deny` win there too.)
//! 2. A namespace is looked up exactly first; only when no policy names it exactly does the
//!    closest matching glob apply: the one whose wildcards cover the fewest characters, ties
//!    going to the glob that sorts first.
//! 3. Variables are looked up as: exact namespace and path; then the workload's implicit
//!    read/list paths in its own namespace; then the closest glob. So an exact `deny` on a
//!    workload's own path blocks its implicit read, and a glob `deny` does not.
//! 4. No policies grant nothing. Only [`Acl::management`] grants everything.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::capability::{
    NamespaceCapability, OperatorCapability, VariableCapability, VariableOp, collapse_deny, grants,
};
use crate::glob;
use crate::policy::WorkloadScope;
use crate::rules::PolicyRules;

/// A set of compiled policies, ready to answer capability checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acl {
    management: bool,
    namespaces: BTreeMap<String, BTreeSet<NamespaceCapability>>,
    namespace_globs: BTreeMap<String, BTreeSet<NamespaceCapability>>,
    variables: BTreeMap<(String, String), BTreeSet<VariableCapability>>,
    variable_globs: BTreeMap<(String, String), BTreeSet<VariableCapability>>,
    operator: BTreeSet<OperatorCapability>,
    workload: Option<WorkloadScope>,
}

/// A description of what an [`Acl`] grants, for WhoAmI and for operators reading logs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclSummary {
    /// Whether everything is allowed; when true the other fields are empty.
    pub management: bool,
    /// Effective capabilities per namespace name or glob, sorted by name.
    pub namespaces: Vec<NamespaceGrant>,
    /// Effective capabilities per namespace and variables path, sorted.
    pub variables: Vec<VariableGrant>,
    /// Effective operator capabilities.
    pub operator: Vec<OperatorCapability>,
    /// The implicit grants of a workload identity, when the ACL is one.
    pub workload: Option<WorkloadGrant>,
}

/// The effective capabilities for one namespace name or glob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceGrant {
    /// The namespace name or glob.
    pub namespace: String,
    /// What it grants; exactly `[deny]` when denied.
    pub capabilities: Vec<NamespaceCapability>,
}

/// The effective capabilities for one variables path or glob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableGrant {
    /// The namespace name or glob.
    pub namespace: String,
    /// The path or glob.
    pub path: String,
    /// What it grants; exactly `[deny]` when denied.
    pub capabilities: Vec<VariableCapability>,
}

/// What every workload identity may do without any policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadGrant {
    /// The workload's namespace, the only one the implicit grants apply in.
    pub namespace: String,
    /// The paths the workload may read and list (unless an exact rule overrides them).
    pub variable_paths: Vec<String>,
    /// The capabilities on those paths: `list` and `read`.
    pub variable_capabilities: Vec<VariableCapability>,
    /// Whether services in the namespace may be listed and read: always true.
    pub service_read: bool,
}

const IMPLICIT_VARIABLE_CAPABILITIES: [VariableCapability; 2] =
    [VariableCapability::List, VariableCapability::Read];

impl Acl {
    /// An ACL that allows everything, for management tokens.
    pub fn management() -> Acl {
        Acl {
            management: true,
            ..Acl::deny_all()
        }
    }

    /// An ACL that allows nothing.
    pub fn deny_all() -> Acl {
        Acl {
            management: false,
            namespaces: BTreeMap::new(),
            namespace_globs: BTreeMap::new(),
            variables: BTreeMap::new(),
            variable_globs: BTreeMap::new(),
            operator: BTreeSet::new(),
            workload: None,
        }
    }

    /// Compiles a token's policies. The order of `policies` never changes a decision, and an
    /// empty slice allows nothing.
    pub fn compile(policies: &[&PolicyRules]) -> Acl {
        let mut acl = Acl::deny_all();
        for rules in policies {
            acl.add(rules);
        }
        acl.finish()
    }

    /// Compiles a workload identity's attached policies (see [`crate::workload_policies`]) and
    /// adds the implicit workload grants: read and list on its own variables paths, and
    /// service reads, in its own namespace.
    pub fn for_workload(policies: &[&PolicyRules], scope: &WorkloadScope) -> Acl {
        Acl {
            workload: Some(scope.clone()),
            ..Acl::compile(policies)
        }
    }

    /// Reports whether this is the management ACL.
    pub fn is_management(&self) -> bool {
        self.management
    }

    /// Reports whether `cap` (a namespace capability such as `"submit-job"`) is allowed in
    /// `namespace`. An unknown capability name, and `"deny"`, are never allowed, not even to
    /// management (Nomad lets management through), so a misspelt check fails closed.
    pub fn allow_namespace_op(&self, namespace: &str, cap: &str) -> bool {
        NamespaceCapability::parse(cap).is_some_and(|cap| self.allow_namespace(namespace, cap))
    }

    /// Typed form of [`Acl::allow_namespace_op`].
    pub fn allow_namespace(&self, namespace: &str, cap: NamespaceCapability) -> bool {
        if cap == NamespaceCapability::Deny {
            return false;
        }
        if self.management {
            return true;
        }
        self.namespace_capabilities(namespace)
            .is_some_and(|set| grants(set, cap))
    }

    /// Reports whether operator capability `cap` (such as `"keyring-rotate"`) is allowed.
    /// Unknown names and `"deny"` are never allowed.
    pub fn allow_operator_op(&self, cap: &str) -> bool {
        OperatorCapability::parse(cap).is_some_and(|cap| self.allow_operator(cap))
    }

    /// Typed form of [`Acl::allow_operator_op`].
    pub fn allow_operator(&self, cap: OperatorCapability) -> bool {
        if cap == OperatorCapability::Deny {
            return false;
        }
        self.management || grants(&self.operator, cap)
    }

    /// Reports whether `op` is allowed on the variables at `path` in `namespace`.
    pub fn allow_variable_op(&self, namespace: &str, path: &str, op: VariableOp) -> bool {
        if self.management {
            return true;
        }
        match self.variable_capabilities(namespace, path) {
            Some(VariableRule::Set(set)) => grants(set, op.capability()),
            Some(VariableRule::Implicit) => {
                IMPLICIT_VARIABLE_CAPABILITIES.contains(&op.capability())
            }
            None => false,
        }
    }

    /// Reports whether services in `namespace` may be listed and read: always for management
    /// and for a workload in its own namespace (attached policies cannot take that away),
    /// otherwise when `read-job` is allowed there. Nomad's implicit grant does not name a
    /// namespace; Sigil keeps it to the workload's own, like the implicit variables grant.
    pub fn allow_service_read(&self, namespace: &str) -> bool {
        let own_namespace = self
            .workload
            .as_ref()
            .is_some_and(|w| w.namespace == namespace);
        own_namespace || self.allow_namespace(namespace, NamespaceCapability::ReadJob)
    }

    /// Describes what this ACL grants.
    pub fn summary(&self) -> AclSummary {
        if self.management {
            return AclSummary {
                management: true,
                namespaces: Vec::new(),
                variables: Vec::new(),
                operator: Vec::new(),
                workload: None,
            };
        }
        AclSummary {
            management: false,
            namespaces: self.namespace_grants(),
            variables: self.variable_grants(),
            operator: self.operator.iter().copied().collect(),
            workload: self.workload.as_ref().map(|scope| WorkloadGrant {
                namespace: scope.namespace.clone(),
                variable_paths: scope.implicit_variable_paths(),
                variable_capabilities: IMPLICIT_VARIABLE_CAPABILITIES.to_vec(),
                service_read: true,
            }),
        }
    }

    /// Unions one policy's effective rules into this ACL.
    fn add(&mut self, rules: &PolicyRules) {
        for namespace in rules.namespaces() {
            let name = namespace.name();
            let table = if glob::is_glob(name) {
                &mut self.namespace_globs
            } else {
                &mut self.namespaces
            };
            // The entry exists even when the block grants nothing: an exact block that grants
            // nothing still shadows every glob for that namespace.
            table
                .entry(name.to_owned())
                .or_default()
                .extend(namespace.effective_capabilities());

            for path in namespace.variables() {
                let key = (name.to_owned(), path.path().to_owned());
                let table = if glob::is_glob(name) || glob::is_glob(path.path()) {
                    &mut self.variable_globs
                } else {
                    &mut self.variables
                };
                table
                    .entry(key)
                    .or_default()
                    .extend(path.effective_capabilities());
            }
        }
        if let Some(operator) = rules.operator() {
            self.operator.extend(operator.effective_capabilities());
        }
    }

    /// Applies rule 1: once every policy is in, a key that any policy denies grants nothing.
    fn finish(mut self) -> Acl {
        self.namespaces.values_mut().for_each(collapse_deny);
        self.namespace_globs.values_mut().for_each(collapse_deny);
        self.variables.values_mut().for_each(collapse_deny);
        self.variable_globs.values_mut().for_each(collapse_deny);
        collapse_deny(&mut self.operator);
        self
    }

    /// Rule 2: the exact entry for `namespace`, or else the closest glob.
    fn namespace_capabilities(&self, namespace: &str) -> Option<&BTreeSet<NamespaceCapability>> {
        if let Some(set) = self.namespaces.get(namespace) {
            return Some(set);
        }
        let subject_chars = namespace.chars().count();
        closest(
            self.namespace_globs
                .iter()
                .filter(|(pattern, _)| glob::matches(pattern, namespace))
                .map(|(pattern, set)| (glob::difference(pattern, subject_chars), set)),
        )
    }

    /// Rule 3: exact entry, then the implicit workload paths, then the closest glob.
    fn variable_capabilities(&self, namespace: &str, path: &str) -> Option<VariableRule<'_>> {
        let key = (namespace.to_owned(), path.to_owned());
        if let Some(set) = self.variables.get(&key) {
            return Some(VariableRule::Set(set));
        }
        if self.is_implicit_variable_path(namespace, path) {
            return Some(VariableRule::Implicit);
        }
        let (namespace_chars, path_chars) = (namespace.chars().count(), path.chars().count());
        let matching = self
            .variable_globs
            .iter()
            .filter(|((ns_glob, path_glob), _)| {
                glob::matches(ns_glob, namespace) && glob::matches(path_glob, path)
            });
        // Ranked on namespace and path together, as if they were one string.
        let ranked = matching.map(|((ns_glob, path_glob), set)| {
            let difference = glob::difference(ns_glob, namespace_chars)
                + glob::difference(path_glob, path_chars);
            (difference, set)
        });
        closest(ranked).map(VariableRule::Set)
    }

    /// Exact and glob namespace entries together, sorted by name.
    fn namespace_grants(&self) -> Vec<NamespaceGrant> {
        let entries = self.namespaces.iter().chain(&self.namespace_globs);
        let mut grants: Vec<_> = entries
            .map(|(name, set)| NamespaceGrant {
                namespace: name.clone(),
                capabilities: set.iter().copied().collect(),
            })
            .collect();
        grants.sort_by(|a, b| a.namespace.cmp(&b.namespace));
        grants
    }

    /// Exact and glob variables entries together, sorted by namespace and path.
    fn variable_grants(&self) -> Vec<VariableGrant> {
        let entries = self.variables.iter().chain(&self.variable_globs);
        let mut grants: Vec<_> = entries
            .map(|((namespace, path), set)| VariableGrant {
                namespace: namespace.clone(),
                path: path.clone(),
                capabilities: set.iter().copied().collect(),
            })
            .collect();
        grants.sort_by(|a, b| (&a.namespace, &a.path).cmp(&(&b.namespace, &b.path)));
        grants
    }

    fn is_implicit_variable_path(&self, namespace: &str, path: &str) -> bool {
        self.workload.as_ref().is_some_and(|scope| {
            scope.namespace == namespace
                && scope
                    .implicit_variable_paths()
                    .iter()
                    .any(|implicit| implicit == path)
        })
    }
}

/// Where a variables decision comes from.
enum VariableRule<'a> {
    /// A policy entry, exact or glob.
    Set(&'a BTreeSet<VariableCapability>),
    /// The workload's implicit read and list on its own paths.
    Implicit,
}

/// The set of the closest glob: the smallest difference, the first in key order on a tie
/// (`min_by_key` keeps the first of equal minimums, and the maps iterate in key order).
fn closest<'a, C: 'a>(
    ranked: impl Iterator<Item = (usize, &'a BTreeSet<C>)>,
) -> Option<&'a BTreeSet<C>> {
    ranked
        .min_by_key(|(difference, _)| *difference)
        .map(|(_, set)| set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NamespacePolicy;

    fn rules(text: &str) -> PolicyRules {
        PolicyRules::parse(text).unwrap()
    }

    fn scope() -> WorkloadScope {
        WorkloadScope {
            namespace: "default".to_owned(),
            job: "web".to_owned(),
            group: "api".to_owned(),
            task: None,
        }
    }

    #[test]
    fn management_is_reported_as_such_and_nothing_else() {
        let summary = Acl::management().summary();
        assert!(summary.management, "management must say so");
        assert!(summary.namespaces.is_empty(), "management lists no rules");
        assert!(
            Acl::management().is_management(),
            "is_management must agree"
        );
        assert!(
            !Acl::deny_all().is_management(),
            "deny_all is not management"
        );
    }

    #[test]
    fn an_empty_workload_acl_is_never_management() {
        let acl = Acl::for_workload(&[], &scope());
        assert!(
            !acl.is_management(),
            "no policies must never mean management"
        );
        assert!(
            !acl.allow_namespace_op("default", "read-job"),
            "no namespace grant"
        );
        assert!(acl.allow_service_read("default"), "services stay readable");
    }

    #[test]
    fn summary_lists_effective_capabilities_with_deny_collapsed() {
        let writer = rules("namespace \"default\" {\n  policy = \"scale\"\n}\n");
        let denier = rules(
            "namespace \"prod-*\" {\n  policy = \"write\"\n  variables {\n    \
             path \"a\" { capabilities = [\"deny\", \"read\"] }\n  }\n}\n\
             operator {\n  policy = \"read\"\n}\n",
        );
        let summary = Acl::for_workload(&[&writer, &denier], &scope()).summary();

        let names: Vec<_> = summary
            .namespaces
            .iter()
            .map(|g| g.namespace.as_str())
            .collect();
        assert_eq!(
            names,
            ["default", "prod-*"],
            "exact and glob entries, sorted"
        );
        let mut scale = NamespacePolicy::Scale.expand().to_vec();
        scale.sort();
        assert_eq!(
            summary.namespaces[0].capabilities, scale,
            "scale expands in the summary"
        );
        assert_eq!(
            summary.variables,
            [VariableGrant {
                namespace: "prod-*".to_owned(),
                path: "a".to_owned(),
                capabilities: vec![VariableCapability::Deny],
            }],
            "a denied path shows only deny"
        );
        assert_eq!(
            summary.operator,
            [
                OperatorCapability::LicenseRead,
                OperatorCapability::KeyringRead,
                OperatorCapability::RaftRead
            ],
            "operator read expands"
        );
        let workload = summary
            .workload
            .expect("a workload ACL reports its implicit grants");
        assert_eq!(
            workload.variable_paths.len(),
            3,
            "a service identity has three paths"
        );
        assert!(workload.service_read, "services are always readable");
    }
}
