//! Named policies, their optional job association, and the workload scope associations are
//! matched against.
//!
//! The server builds an [`AclPolicy`] when a policy is written (validated before it is proposed)
//! and stores it in the replicated state. When a workload identity is verified, the server
//! builds a [`WorkloadScope`] from the allocation (never from the token's claims) and keeps the
//! policies whose [`JobAcl::applies_to`] says yes; [`workload_policies`] does that filtering.

use serde::{Deserialize, Serialize};

use crate::error::PolicyError;
use crate::rules::PolicyRules;

/// The longest policy description accepted, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 256;

/// The longest policy name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 128;

/// A named ACL policy as stored in the replicated state and in snapshots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclPolicy {
    /// Unique name, 1 to 128 letters, digits or `-`.
    pub name: String,
    /// Free text, at most [`MAX_DESCRIPTION_CHARS`] characters.
    pub description: String,
    /// The validated rules.
    pub rules: PolicyRules,
    /// When set, the policy is also attached to the workloads this association matches.
    pub job_acl: Option<JobAcl>,
}

/// Attaches a policy to workloads: every workload of a namespace, of one job, of one group of
/// that job, or of one task of that group.
///
/// Invariant (checked by [`JobAcl::validate`]): `namespace` is not empty; `job` needs
/// `namespace`, `group` needs `job`, `task` needs `group`; a present field is not empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobAcl {
    /// The namespace of the workloads.
    pub namespace: String,
    /// The job, or its parent for dispatched and periodic children; `None` for every job in
    /// the namespace.
    pub job: Option<String>,
    /// The task group; `None` for every group of the job.
    pub group: Option<String>,
    /// The task; `None` for every task of the group (and for its services).
    pub task: Option<String>,
}

/// What a workload identity is, taken from its allocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadScope {
    /// The allocation's namespace.
    pub namespace: String,
    /// The job id; for a child job (dispatched or periodic) the parent job's id.
    pub job: String,
    /// The allocation's task group.
    pub group: String,
    /// The task for a task identity; `None` for a service identity.
    pub task: Option<String>,
}

impl AclPolicy {
    /// Builds a policy after checking the name, the description and the job association.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        rules: PolicyRules,
        job_acl: Option<JobAcl>,
    ) -> Result<AclPolicy, PolicyError> {
        let policy = AclPolicy {
            name: name.into(),
            description: description.into(),
            rules,
            job_acl,
        };
        policy.validate()?;
        Ok(policy)
    }

    /// Checks the invariants [`AclPolicy::new`] establishes, for a value built field by field.
    pub fn validate(&self) -> Result<(), PolicyError> {
        validate_name(&self.name)?;
        let chars = self.description.chars().count();
        if chars > MAX_DESCRIPTION_CHARS {
            return Err(PolicyError::DescriptionTooLong {
                chars,
                max: MAX_DESCRIPTION_CHARS,
            });
        }
        match &self.job_acl {
            Some(job_acl) => job_acl.validate(),
            None => Ok(()),
        }
    }

    /// Reports whether this policy is attached to the workload through its job association.
    /// A policy without one applies to tokens only, never to workloads.
    pub fn applies_to(&self, scope: &WorkloadScope) -> bool {
        self.job_acl
            .as_ref()
            .is_some_and(|job_acl| job_acl.applies_to(scope))
    }
}

impl JobAcl {
    /// Checks that each narrower field has the wider one it refines, and that nothing present
    /// is empty. Stricter than Nomad, which accepts an empty namespace without a job: such an
    /// association could never match a workload, so it is refused as a mistake.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.namespace.is_empty() {
            return Err(PolicyError::JobAclWithoutNamespace);
        }
        let fields = [
            ("job", &self.job),
            ("group", &self.group),
            ("task", &self.task),
        ];
        for (field, value) in fields {
            if value.as_deref() == Some("") {
                return Err(PolicyError::JobAclEmptyField { field });
            }
        }
        if self.group.is_some() && self.job.is_none() {
            return Err(PolicyError::JobAclGroupWithoutJob);
        }
        if self.task.is_some() && self.group.is_none() {
            return Err(PolicyError::JobAclTaskWithoutGroup);
        }
        Ok(())
    }

    /// Reports whether this association attaches its policy to the workload.
    ///
    /// The namespace must be equal. With no job, every workload of the namespace matches.
    /// Otherwise the job must be equal; then a set group must be equal; then a set task must be
    /// equal to the workload's task, which a service identity does not have, so task-scoped
    /// policies never reach services.
    pub fn applies_to(&self, scope: &WorkloadScope) -> bool {
        if self.namespace != scope.namespace {
            return false;
        }
        let Some(job) = &self.job else {
            return true;
        };
        if *job != scope.job {
            return false;
        }
        let Some(group) = &self.group else {
            return true;
        };
        if *group != scope.group {
            return false;
        }
        match &self.task {
            None => true,
            Some(task) => scope.task.as_ref() == Some(task),
        }
    }
}

impl WorkloadScope {
    /// The variables paths every workload may read and list in its own namespace:
    /// `nomad/jobs`, `nomad/jobs/<job>`, `nomad/jobs/<job>/<group>` and, for a task,
    /// `nomad/jobs/<job>/<group>/<task>`.
    pub fn implicit_variable_paths(&self) -> Vec<String> {
        let job = format!("nomad/jobs/{}", self.job);
        let group = format!("{job}/{}", self.group);
        let task = self.task.as_ref().map(|task| format!("{group}/{task}"));
        let mut paths = vec!["nomad/jobs".to_owned(), job, group];
        paths.extend(task);
        paths
    }
}

/// The rules of every policy attached to the workload, in the order given: the input to
/// [`crate::Acl::for_workload`].
pub fn workload_policies<'a>(
    policies: impl IntoIterator<Item = &'a AclPolicy>,
    scope: &WorkloadScope,
) -> Vec<&'a PolicyRules> {
    policies
        .into_iter()
        .filter(|policy| policy.applies_to(scope))
        .map(|policy| &policy.rules)
        .collect()
}

/// Checks a policy name against `^[a-zA-Z0-9-]{1,128}$`.
fn validate_name(name: &str) -> Result<(), PolicyError> {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || c == '-';
    if (1..=MAX_NAME_CHARS).contains(&name.len()) && name.chars().all(valid_char) {
        Ok(())
    } else {
        Err(PolicyError::InvalidPolicyName {
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> PolicyRules {
        PolicyRules::parse("namespace \"default\" { policy = \"read\" }").unwrap()
    }

    fn job_acl(job: Option<&str>, group: Option<&str>, task: Option<&str>) -> JobAcl {
        JobAcl {
            namespace: "default".to_owned(),
            job: job.map(str::to_owned),
            group: group.map(str::to_owned),
            task: task.map(str::to_owned),
        }
    }

    #[test]
    fn names_outside_the_allowed_alphabet_or_length_are_rejected() {
        for name in ["", "has space", "under_score", &"a".repeat(129)] {
            let err = AclPolicy::new(name, "", rules(), None).unwrap_err();
            assert!(
                matches!(err, PolicyError::InvalidPolicyName { .. }),
                "name {name:?} must be rejected, got {err:?}"
            );
        }
        let longest = "a".repeat(128);
        assert!(
            AclPolicy::new(longest, "", rules(), None).is_ok(),
            "128 characters are fine"
        );
    }

    #[test]
    fn descriptions_longer_than_256_characters_are_rejected() {
        let ok = "é".repeat(256);
        assert!(
            AclPolicy::new("p", ok, rules(), None).is_ok(),
            "256 characters are fine"
        );
        let err = AclPolicy::new("p", "x".repeat(257), rules(), None).unwrap_err();
        assert_eq!(
            err,
            PolicyError::DescriptionTooLong {
                chars: 257,
                max: 256
            },
            "257 is over"
        );
    }

    #[test]
    fn job_acl_fields_need_the_wider_field_they_refine() {
        let cases = [
            (
                job_acl(None, Some("g"), None),
                PolicyError::JobAclGroupWithoutJob,
            ),
            (
                job_acl(Some("j"), None, Some("t")),
                PolicyError::JobAclTaskWithoutGroup,
            ),
            (
                job_acl(Some(""), None, None),
                PolicyError::JobAclEmptyField { field: "job" },
            ),
        ];
        for (acl, expected) in cases {
            assert_eq!(acl.validate(), Err(expected.clone()), "{acl:?}");
        }
        let no_namespace = JobAcl {
            namespace: String::new(),
            ..job_acl(Some("j"), None, None)
        };
        assert_eq!(
            no_namespace.validate(),
            Err(PolicyError::JobAclWithoutNamespace),
            "a job needs a namespace"
        );
        let err = AclPolicy::new("p", "", rules(), Some(job_acl(None, Some("g"), None)));
        assert_eq!(
            err,
            Err(PolicyError::JobAclGroupWithoutJob),
            "new must validate the job ACL"
        );
    }

    #[test]
    fn implicit_paths_stop_at_the_group_for_service_identities() {
        let task = WorkloadScope {
            namespace: "default".to_owned(),
            job: "web".to_owned(),
            group: "api".to_owned(),
            task: Some("server".to_owned()),
        };
        assert_eq!(
            task.implicit_variable_paths(),
            [
                "nomad/jobs",
                "nomad/jobs/web",
                "nomad/jobs/web/api",
                "nomad/jobs/web/api/server"
            ],
            "a task gets four paths"
        );
        let service = WorkloadScope { task: None, ..task };
        assert_eq!(
            service.implicit_variable_paths().len(),
            3,
            "a service gets three paths"
        );
    }
}
