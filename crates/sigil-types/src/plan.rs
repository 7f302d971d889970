//! Plans as schedulers submit them, and their validation.
//!
//! A plan names a job and the allocations to place or stop. [`Plan::validate`] runs on the leader
//! before anything is signed or proposed, so a malformed plan is rejected with the field that is
//! wrong and never reaches Raft (guarantee 7). The JSON form of [`Plan`] is the file format of
//! `sigil plan submit`.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::AllocId;

/// The name of the identity every task and service gets, with or without an `identity` block.
pub const DEFAULT_IDENTITY: &str = "default";

/// Upper bound on the identities one plan may mint, so one entry stays a bounded Raft write.
pub const MAX_IDENTITIES_PER_PLAN: usize = 10_000;

const MAX_NAME_LEN: usize = 128;
const MAX_TTL_SECS: u64 = 366 * 24 * 3600;

/// A client-chosen plan id: a retry with the same id returns the first result.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlanId(pub String);

impl fmt::Display for PlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A scheduler's plan: place allocations of a job's groups, stop others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Chosen by the client; makes retries idempotent.
    pub plan_id: PlanId,
    /// The job whose groups are placed.
    pub job: Job,
    /// Allocations to create, one per entry.
    #[serde(default)]
    pub place: Vec<Placement>,
    /// Allocations to stop.
    #[serde(default)]
    pub stop: Vec<AllocId>,
}

/// A job: the unit a plan places.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// The job's namespace; ACL policies attach to it.
    pub namespace: String,
    /// The job id.
    pub id: String,
    /// The parent job of a child (periodic or dispatched) job; identities then name the parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// The task groups; a placement names one.
    pub groups: Vec<TaskGroup>,
}

/// A task group: what one allocation runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskGroup {
    /// The group's name, unique in the job.
    pub name: String,
    /// The group's tasks; at least one.
    pub tasks: Vec<Task>,
    /// Group-level services.
    #[serde(default)]
    pub services: Vec<Service>,
    /// Group-level Consul settings, inherited by tasks without their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consul: Option<ConsulBlock>,
}

/// A task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// The task's name, unique in the group.
    pub name: String,
    /// Identity blocks; the default identity exists even without one.
    #[serde(default)]
    pub identities: Vec<IdentityBlock>,
    /// Vault settings, copied into the task's claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<VaultBlock>,
    /// Consul settings, copied into the task's claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consul: Option<ConsulBlock>,
}

/// A service registered by a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// The service's name, unique in the group.
    pub name: String,
    /// Identity blocks; the default identity exists even without one.
    #[serde(default)]
    pub identities: Vec<IdentityBlock>,
}

/// An `identity` block: how one identity of a task or service is minted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityBlock {
    /// The identity's name; absent or empty means the default identity.
    #[serde(default)]
    pub name: String,
    /// Audiences; the configured default audience when empty.
    #[serde(default)]
    pub aud: Vec<String>,
    /// Lifetime in seconds; 0 means no `exp` claim. Not allowed on the default identity.
    #[serde(default)]
    pub ttl_seconds: u64,
    /// Expose the token to the task as an environment variable.
    #[serde(default)]
    pub env: bool,
    /// Expose the token to the task as a file.
    #[serde(default)]
    pub file: bool,
}

/// A task's `vault` block.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultBlock {
    /// The Vault role; becomes the `vault_role` claim.
    #[serde(default)]
    pub role: String,
    /// The Vault namespace; becomes the `vault_namespace` claim.
    #[serde(default)]
    pub namespace: String,
}

/// A `consul` block.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsulBlock {
    /// The Consul namespace; becomes the `consul_namespace` claim.
    #[serde(default)]
    pub namespace: String,
}

/// One allocation to create: which group, on which client node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// The task group to run.
    pub group: String,
    /// The client node that runs it.
    pub node_id: String,
}

/// A plan that cannot be applied, naming the field that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    /// A path into the plan, e.g. `job.groups[0].tasks[1].identities[0].ttl_seconds`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ValidationError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl Plan {
    /// Checks everything about the plan that does not depend on cluster state.
    ///
    /// Stops of unknown allocations are checked against the state by the leader, and again
    /// when the entry is applied.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_plan_id(&self.plan_id.0)?;
        self.job.validate()?;
        if self.place.is_empty() && self.stop.is_empty() {
            return Err(ValidationError::new(
                "place",
                "the plan places and stops nothing",
            ));
        }

        for (i, placement) in self.place.iter().enumerate() {
            let field = format!("place[{i}]");
            if self.job.group(&placement.group).is_none() {
                let reason = format!(
                    "group {:?} is not in job {:?}",
                    placement.group, self.job.id
                );
                return Err(ValidationError::new(format!("{field}.group"), reason));
            }
            check_name(&format!("{field}.node_id"), &placement.node_id)?;
        }

        let mut stops = BTreeSet::new();
        for (i, alloc) in self.stop.iter().enumerate() {
            if !stops.insert(alloc) {
                return Err(ValidationError::new(
                    format!("stop[{i}]"),
                    "allocation listed twice",
                ));
            }
        }

        let identities = self.identity_count();
        if identities > MAX_IDENTITIES_PER_PLAN {
            let reason = format!(
                "the plan would mint {identities} identities, more than the limit of \
                 {MAX_IDENTITIES_PER_PLAN}; split it"
            );
            return Err(ValidationError::new("place", reason));
        }
        Ok(())
    }

    /// How many identities applying this plan signs.
    pub fn identity_count(&self) -> usize {
        self.place
            .iter()
            .filter_map(|p| self.job.group(&p.group))
            .map(TaskGroup::identity_count)
            .sum()
    }
}

impl Job {
    /// The group named `name`.
    pub fn group(&self, name: &str) -> Option<&TaskGroup> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The job id that identities name: the parent for child jobs.
    pub fn identity_job_id(&self) -> &str {
        self.parent_id.as_deref().unwrap_or(&self.id)
    }

    fn validate(&self) -> Result<(), ValidationError> {
        check_namespace("job.namespace", &self.namespace)?;
        check_name("job.id", &self.id)?;
        if let Some(parent) = &self.parent_id {
            check_name("job.parent_id", parent)?;
        }
        if self.groups.is_empty() {
            return Err(ValidationError::new(
                "job.groups",
                "a job needs at least one group",
            ));
        }
        let mut names = BTreeSet::new();
        for (i, group) in self.groups.iter().enumerate() {
            let field = format!("job.groups[{i}]");
            if !names.insert(group.name.as_str()) {
                let reason = format!("group {:?} is defined twice", group.name);
                return Err(ValidationError::new(format!("{field}.name"), reason));
            }
            group.validate(&field)?;
        }
        Ok(())
    }
}

impl TaskGroup {
    /// How many identities one allocation of this group carries.
    pub fn identity_count(&self) -> usize {
        let tasks: usize = self
            .tasks
            .iter()
            .map(|t| workload_identity_count(&t.identities))
            .sum();
        let services: usize = self
            .services
            .iter()
            .map(|s| workload_identity_count(&s.identities))
            .sum();
        tasks + services
    }

    fn validate(&self, field: &str) -> Result<(), ValidationError> {
        check_name(&format!("{field}.name"), &self.name)?;
        if self.tasks.is_empty() {
            let reason = "a group needs at least one task";
            return Err(ValidationError::new(format!("{field}.tasks"), reason));
        }
        let mut tasks = BTreeSet::new();
        for (i, task) in self.tasks.iter().enumerate() {
            let field = format!("{field}.tasks[{i}]");
            check_name(&format!("{field}.name"), &task.name)?;
            if !tasks.insert(task.name.as_str()) {
                let reason = format!("task {:?} is defined twice", task.name);
                return Err(ValidationError::new(format!("{field}.name"), reason));
            }
            check_identities(&field, &task.identities)?;
        }
        let mut services = BTreeSet::new();
        for (i, service) in self.services.iter().enumerate() {
            let field = format!("{field}.services[{i}]");
            check_name(&format!("{field}.name"), &service.name)?;
            if !services.insert(service.name.as_str()) {
                let reason = format!("service {:?} is defined twice", service.name);
                return Err(ValidationError::new(format!("{field}.name"), reason));
            }
            check_identities(&field, &service.identities)?;
        }
        Ok(())
    }
}

impl IdentityBlock {
    /// The identity's name, `default` when the block has none.
    pub fn name(&self) -> &str {
        if self.name.is_empty() {
            DEFAULT_IDENTITY
        } else {
            &self.name
        }
    }
}

/// The identity blocks a workload is signed for: its blocks, plus the default identity when no
/// block configures it.
pub fn workload_identities(blocks: &[IdentityBlock]) -> Vec<IdentityBlock> {
    let mut all = Vec::with_capacity(blocks.len() + 1);
    if !blocks.iter().any(|b| b.name() == DEFAULT_IDENTITY) {
        all.push(IdentityBlock::default());
    }
    all.extend(blocks.iter().cloned());
    all
}

fn workload_identity_count(blocks: &[IdentityBlock]) -> usize {
    let has_default = blocks.iter().any(|b| b.name() == DEFAULT_IDENTITY);
    blocks.len() + usize::from(!has_default)
}

fn check_identities(field: &str, blocks: &[IdentityBlock]) -> Result<(), ValidationError> {
    let mut names = BTreeSet::new();
    for (i, block) in blocks.iter().enumerate() {
        let field = format!("{field}.identities[{i}]");
        let name = block.name();
        let name_ok = name.len() <= MAX_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            let reason = format!(
                "identity name {name:?} must be 1 to {MAX_NAME_LEN} letters, digits, '-' or '_'"
            );
            return Err(ValidationError::new(format!("{field}.name"), reason));
        }
        if !names.insert(name) {
            let reason = format!("identity {name:?} is defined twice");
            return Err(ValidationError::new(format!("{field}.name"), reason));
        }
        if name == DEFAULT_IDENTITY && block.ttl_seconds != 0 {
            let reason = "the default identity cannot have a ttl; give the identity a name";
            return Err(ValidationError::new(format!("{field}.ttl_seconds"), reason));
        }
        if block.ttl_seconds > MAX_TTL_SECS {
            let reason = format!("ttl must be at most {MAX_TTL_SECS} seconds (366 days)");
            return Err(ValidationError::new(format!("{field}.ttl_seconds"), reason));
        }
        for (j, aud) in block.aud.iter().enumerate() {
            if aud.trim().is_empty() {
                let reason = "an audience must not be empty";
                return Err(ValidationError::new(format!("{field}.aud[{j}]"), reason));
            }
        }
    }
    Ok(())
}

fn check_plan_id(id: &str) -> Result<(), ValidationError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_NAME_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if ok {
        return Ok(());
    }
    let reason =
        format!("plan id {id:?} must be 1 to {MAX_NAME_LEN} letters, digits, '-', '_', '.' or ':'");
    Err(ValidationError::new("plan_id", reason))
}

fn check_namespace(field: &str, ns: &str) -> Result<(), ValidationError> {
    let ok = !ns.is_empty()
        && ns.len() <= MAX_NAME_LEN
        && ns.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        return Ok(());
    }
    let reason = format!("namespace {ns:?} must be 1 to {MAX_NAME_LEN} letters, digits or '-'");
    Err(ValidationError::new(field, reason))
}

/// Job, group, task, service and node names end up inside the `sub` claim, whose parts are
/// separated by ':', so they may not contain ':' or whitespace.
fn check_name(field: &str, name: &str) -> Result<(), ValidationError> {
    if name.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        let reason = format!("must be at most {MAX_NAME_LEN} bytes, got {}", name.len());
        return Err(ValidationError::new(field, reason));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| *c == ':' || c.is_whitespace() || c.is_control())
    {
        let reason = format!("{name:?} contains {bad:?}; names may not contain ':' or whitespace");
        return Err(ValidationError::new(field, reason));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        serde_json::from_str(
            r#"{
              "plan_id": "p-1",
              "job": {
                "namespace": "default", "id": "web",
                "groups": [{
                  "name": "frontend",
                  "tasks": [
                    {"name": "nginx", "identities": [{"name": "vault_default", "aud": ["vault.io"],
                     "ttl_seconds": 3600}], "vault": {"role": "web", "namespace": "ops"}},
                    {"name": "sidecar"}
                  ],
                  "services": [{"name": "http"}]
                }]
              },
              "place": [{"group": "frontend", "node_id": "node-a"}]
            }"#,
        )
        .expect("the fixture plan parses")
    }

    fn field_of(plan: &Plan) -> String {
        plan.validate()
            .expect_err("the plan must be rejected")
            .field
    }

    #[test]
    fn a_well_formed_plan_validates_and_counts_its_identities() {
        let plan = plan();
        assert_eq!(plan.validate(), Ok(()), "the fixture plan is valid");
        // nginx: default + vault_default; sidecar: default; service http: default.
        assert_eq!(
            plan.identity_count(),
            4,
            "identities per allocation of the group"
        );
    }

    #[test]
    fn a_placement_of_an_unknown_group_names_the_placement() {
        let mut plan = plan();
        plan.place[0].group = "backend".into();
        assert_eq!(field_of(&plan), "place[0].group");
    }

    #[test]
    fn a_ttl_on_the_default_identity_is_rejected() {
        let mut plan = plan();
        let ttl = IdentityBlock {
            ttl_seconds: 60,
            ..IdentityBlock::default()
        };
        plan.job.groups[0].tasks[1].identities.push(ttl);
        assert_eq!(
            field_of(&plan),
            "job.groups[0].tasks[1].identities[0].ttl_seconds"
        );
    }

    #[test]
    fn names_with_colons_are_rejected_because_they_would_break_the_subject() {
        let mut plan = plan();
        plan.job.id = "web:prod".into();
        assert_eq!(field_of(&plan), "job.id");
    }

    #[test]
    fn duplicate_tasks_identities_and_groups_are_rejected() {
        let mut dup_task = plan();
        dup_task.job.groups[0].tasks[1].name = "nginx".into();
        assert_eq!(field_of(&dup_task), "job.groups[0].tasks[1].name");

        let mut dup_identity = plan();
        let block = dup_identity.job.groups[0].tasks[0].identities[0].clone();
        dup_identity.job.groups[0].tasks[0].identities.push(block);
        assert_eq!(
            field_of(&dup_identity),
            "job.groups[0].tasks[0].identities[1].name"
        );

        let mut dup_group = plan();
        let group = dup_group.job.groups[0].clone();
        dup_group.job.groups.push(group);
        assert_eq!(field_of(&dup_group), "job.groups[1].name");
    }

    #[test]
    fn empty_audiences_bad_namespaces_and_empty_plans_are_rejected() {
        let mut aud = plan();
        aud.job.groups[0].tasks[0].identities[0]
            .aud
            .push(" ".into());
        assert_eq!(
            field_of(&aud),
            "job.groups[0].tasks[0].identities[0].aud[1]"
        );

        let mut ns = plan();
        ns.job.namespace = "prod/eu".into();
        assert_eq!(field_of(&ns), "job.namespace");

        let mut empty = plan();
        empty.place.clear();
        assert_eq!(field_of(&empty), "place");

        let mut id = plan();
        id.plan_id = PlanId(String::new());
        assert_eq!(field_of(&id), "plan_id");
    }

    #[test]
    fn unknown_fields_in_a_plan_file_are_rejected_by_name() {
        let mut value = serde_json::to_value(plan()).expect("the fixture serializes");
        value["placements"] = serde_json::json!([]);
        let err = serde_json::from_value::<Plan>(value).expect_err("unknown field must fail");
        assert!(
            err.to_string().contains("placements"),
            "the error names the field: {err}"
        );
    }

    #[test]
    fn a_plan_too_large_for_one_entry_is_rejected() {
        let mut plan = plan();
        let placement = plan.place[0].clone();
        plan.place = vec![placement; MAX_IDENTITIES_PER_PLAN / 4 + 1];
        let err = plan.validate().expect_err("oversized plan");
        assert_eq!(
            err.field, "place",
            "the limit is reported on the placements"
        );
        assert!(
            err.reason.contains("split"),
            "the error says what to do: {err}"
        );
    }
}
