//! The capability vocabulary: every capability a policy may grant, the `policy` shorthands and
//! what they expand to, and the variable operations callers check.
//!
//! Used by the grammar in [`crate::rules`] to reject unknown names and by [`crate::Acl`] to
//! expand shorthands when policies are compiled. The spellings are Nomad's, so `namespace` and
//! `operator` rules written for Nomad mean the same here.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Declares a string-named enum: its variants, their policy spellings, `ALL`, `as_str`, `parse`
/// and `Display`.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The spelling used in policy documents.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// Parses the spelling used in policy documents; `None` when it is unknown.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum! {
    /// A capability granted within a namespace, such as `submit-job`.
    pub enum NamespaceCapability {
        /// Denies everything in the namespace, overriding every grant from any policy.
        Deny => "deny",
        /// List jobs.
        ListJobs => "list-jobs",
        /// Parse a job specification.
        ParseJob => "parse-job",
        /// Read jobs, allocations and their status.
        ReadJob => "read-job",
        /// Submit, update and stop jobs (and so receive identities for them).
        SubmitJob => "submit-job",
        /// Dispatch parameterized jobs.
        DispatchJob => "dispatch-job",
        /// Read task logs.
        ReadLogs => "read-logs",
        /// Read allocation file systems.
        ReadFs => "read-fs",
        /// Execute commands inside allocations.
        AllocExec => "alloc-exec",
        /// Execute commands inside allocations using the raw or exec drivers on the node.
        AllocNodeExec => "alloc-node-exec",
        /// Stop, restart and signal allocations.
        AllocLifecycle => "alloc-lifecycle",
        /// Override soft-mandatory Sentinel policies (accepted for Nomad compatibility).
        SentinelOverride => "sentinel-override",
        /// Register CSI plugins.
        CsiRegisterPlugin => "csi-register-plugin",
        /// Create, update and delete CSI volumes.
        CsiWriteVolume => "csi-write-volume",
        /// Read CSI volumes.
        CsiReadVolume => "csi-read-volume",
        /// List CSI volumes.
        CsiListVolume => "csi-list-volume",
        /// Mount CSI volumes.
        CsiMountVolume => "csi-mount-volume",
        /// Create host volumes (implies `host-volume-read`).
        HostVolumeCreate => "host-volume-create",
        /// Register host volumes (implies create and read).
        HostVolumeRegister => "host-volume-register",
        /// Read host volumes.
        HostVolumeRead => "host-volume-read",
        /// Manage host volumes (implies register, create, delete and read).
        HostVolumeWrite => "host-volume-write",
        /// Delete host volumes.
        HostVolumeDelete => "host-volume-delete",
        /// List scaling policies.
        ListScalingPolicies => "list-scaling-policies",
        /// Read a scaling policy.
        ReadScalingPolicy => "read-scaling-policy",
        /// Read a job's scaling status.
        ReadJobScaling => "read-job-scaling",
        /// Scale a job's groups.
        ScaleJob => "scale-job",
        /// Submit resource recommendations.
        SubmitRecommendation => "submit-recommendation",
        /// Register a job (the register part of `submit-job`).
        RegisterJob => "register-job",
        /// Revert a job to an earlier version.
        RevertJob => "revert-job",
        /// Deregister (stop) a job.
        DeregisterJob => "deregister-job",
        /// Purge a stopped job.
        PurgeJob => "purge-job",
        /// Force a new evaluation of a job.
        EvaluateJob => "evaluate-job",
        /// Plan a job without submitting it.
        PlanJob => "plan-job",
        /// Tag a job version.
        TagJobVersion => "tag-job-version",
        /// Mark a job version stable.
        StableJob => "stable-job",
        /// Fail a deployment.
        FailDeployment => "fail-deployment",
        /// Pause or resume a deployment.
        PauseDeployment => "pause-deployment",
        /// Promote a canary deployment.
        PromoteDeployment => "promote-deployment",
        /// Unblock a deployment.
        UnblockDeployment => "unblock-deployment",
        /// Cancel a deployment.
        CancelDeployment => "cancel-deployment",
        /// Set allocation health within a deployment.
        SetAllocHealthDeployment => "set-alloc-health-deployment",
        /// Garbage-collect allocations.
        GcAllocation => "gc-allocation",
        /// Pause allocations.
        PauseAllocation => "pause-allocation",
        /// Force a periodic job to run now.
        ForcePeriodicJob => "force-periodic-job",
        /// Delete service registrations.
        DeleteServiceRegistration => "delete-service-registration",
    }
}

named_enum! {
    /// A cluster-wide operator capability, such as `keyring-rotate`.
    pub enum OperatorCapability {
        /// Denies every operator capability, overriding every grant from any policy.
        Deny => "deny",
        /// Read licence information.
        LicenseRead => "license-read",
        /// List root keys and their states.
        KeyringRead => "keyring-read",
        /// Rotate the keyring.
        KeyringRotate => "keyring-rotate",
        /// Remove or revoke root keys.
        KeyringDelete => "keyring-delete",
        /// Save a state snapshot.
        SnapshotSave => "snapshot-save",
        /// Restore a state snapshot.
        SnapshotRestore => "snapshot-restore",
        /// Read Raft configuration and peers.
        RaftRead => "raft-read",
        /// Change Raft membership and transfer leadership.
        RaftWrite => "raft-write",
    }
}

named_enum! {
    /// A capability on a variables path.
    pub enum VariableCapability {
        /// List variables under the path.
        List => "list",
        /// Read variables (implies `list`).
        Read => "read",
        /// Create and update variables.
        Write => "write",
        /// Delete variables.
        Destroy => "destroy",
        /// Denies every operation on the path; collapses the block it is written in.
        Deny => "deny",
    }
}

named_enum! {
    /// The `policy` shorthand of a `namespace` block.
    pub enum NamespacePolicy {
        /// Expands to `deny`.
        Deny => "deny",
        /// Expands to the read-only capabilities.
        Read => "read",
        /// Expands to `read` plus the capabilities that change jobs and allocations.
        Write => "write",
        /// Expands to the capabilities needed to read and scale jobs.
        Scale => "scale",
    }
}

named_enum! {
    /// The `policy` shorthand of the `operator` block.
    pub enum OperatorPolicy {
        /// Expands to `deny`.
        Deny => "deny",
        /// Expands to `license-read` and `keyring-read`.
        Read => "read",
        /// Expands to `read` plus `snapshot-save`, `keyring-rotate` and `keyring-delete`.
        Write => "write",
    }
}

named_enum! {
    /// An operation on variables, as checked by [`crate::Acl::allow_variable_op`].
    pub enum VariableOp {
        /// List variables.
        List => "list",
        /// Read a variable.
        Read => "read",
        /// Create or update a variable.
        Write => "write",
        /// Delete a variable.
        Destroy => "destroy",
    }
}

/// A capability kind that has a `deny` member which overrides every other member of a set.
pub(crate) trait Capability: Copy + Ord {
    /// The member that denies everything.
    const DENY: Self;
}

impl NamespacePolicy {
    /// The capabilities this shorthand grants.
    pub fn expand(self) -> &'static [NamespaceCapability] {
        use NamespaceCapability as C;
        const READ: &[NamespaceCapability] = &[
            C::ListJobs,
            C::ParseJob,
            C::ReadJob,
            C::CsiListVolume,
            C::CsiReadVolume,
            C::ReadJobScaling,
            C::ListScalingPolicies,
            C::ReadScalingPolicy,
            C::HostVolumeRead,
        ];
        const WRITE: &[NamespaceCapability] = &[
            C::ListJobs,
            C::ParseJob,
            C::ReadJob,
            C::CsiListVolume,
            C::CsiReadVolume,
            C::ReadJobScaling,
            C::ListScalingPolicies,
            C::ReadScalingPolicy,
            C::HostVolumeRead,
            C::ScaleJob,
            C::SubmitJob,
            C::DispatchJob,
            C::ReadLogs,
            C::ReadFs,
            C::AllocExec,
            C::AllocLifecycle,
            C::CsiMountVolume,
            C::CsiWriteVolume,
            C::SubmitRecommendation,
            C::HostVolumeCreate,
        ];
        const SCALE: &[NamespaceCapability] = &[
            C::ListScalingPolicies,
            C::ReadScalingPolicy,
            C::ReadJobScaling,
            C::ScaleJob,
            C::ReadJob,
            C::SubmitRecommendation,
        ];
        match self {
            NamespacePolicy::Deny => &[C::Deny],
            NamespacePolicy::Read => READ,
            NamespacePolicy::Write => WRITE,
            NamespacePolicy::Scale => SCALE,
        }
    }
}

impl OperatorPolicy {
    /// The capabilities this shorthand grants.
    pub fn expand(self) -> &'static [OperatorCapability] {
        use OperatorCapability as C;
        match self {
            OperatorPolicy::Deny => &[C::Deny],
            // Nomad's operator read and write also cover `operator raft list-peers` and the
            // membership commands; Sigil names those raft-read and raft-write.
            OperatorPolicy::Read => &[C::LicenseRead, C::KeyringRead, C::RaftRead],
            OperatorPolicy::Write => &[
                C::LicenseRead,
                C::KeyringRead,
                C::RaftRead,
                C::SnapshotSave,
                C::KeyringRotate,
                C::KeyringDelete,
                C::RaftWrite,
            ],
        }
    }
}

impl NamespaceCapability {
    /// Further capabilities that granting this one grants too (only the host-volume ones have
    /// any).
    pub fn implied(self) -> &'static [NamespaceCapability] {
        use NamespaceCapability as C;
        match self {
            C::HostVolumeWrite => &[
                C::HostVolumeRegister,
                C::HostVolumeCreate,
                C::HostVolumeDelete,
                C::HostVolumeRead,
            ],
            C::HostVolumeRegister => &[C::HostVolumeCreate, C::HostVolumeRead],
            C::HostVolumeCreate => &[C::HostVolumeRead],
            _ => &[],
        }
    }
}

impl VariableOp {
    /// The path capability that permits this operation.
    pub fn capability(self) -> VariableCapability {
        match self {
            VariableOp::List => VariableCapability::List,
            VariableOp::Read => VariableCapability::Read,
            VariableOp::Write => VariableCapability::Write,
            VariableOp::Destroy => VariableCapability::Destroy,
        }
    }
}

impl Capability for NamespaceCapability {
    const DENY: Self = NamespaceCapability::Deny;
}

impl Capability for OperatorCapability {
    const DENY: Self = OperatorCapability::Deny;
}

impl Capability for VariableCapability {
    const DENY: Self = VariableCapability::Deny;
}

/// Replaces a set that contains `deny` with `{deny}`, so no other member can be found in it.
pub(crate) fn collapse_deny<C: Capability>(set: &mut BTreeSet<C>) {
    if set.contains(&C::DENY) {
        set.clear();
        set.insert(C::DENY);
    }
}

/// Reports whether `set` grants `cap`: it holds `cap` and no `deny`.
pub(crate) fn grants<C: Capability>(set: &BTreeSet<C>, cap: C) -> bool {
    cap != C::DENY && set.contains(&cap) && !set.contains(&C::DENY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_parses_back_to_its_value() {
        for cap in NamespaceCapability::ALL {
            assert_eq!(
                NamespaceCapability::parse(cap.as_str()),
                Some(*cap),
                "{cap}"
            );
        }
        for cap in OperatorCapability::ALL {
            assert_eq!(OperatorCapability::parse(cap.as_str()), Some(*cap), "{cap}");
        }
        for cap in VariableCapability::ALL {
            assert_eq!(VariableCapability::parse(cap.as_str()), Some(*cap), "{cap}");
        }
    }

    #[test]
    fn serde_uses_the_policy_spelling() {
        let json = serde_json::to_string(&NamespaceCapability::CsiListVolume).unwrap();
        assert_eq!(
            json, "\"csi-list-volume\"",
            "stored form must match the policy spelling"
        );
    }

    #[test]
    fn write_shorthand_is_a_superset_of_read() {
        let write: BTreeSet<_> = NamespacePolicy::Write.expand().iter().collect();
        for cap in NamespacePolicy::Read.expand() {
            assert!(write.contains(cap), "write must include read's {cap}");
        }
        let op_write: BTreeSet<_> = OperatorPolicy::Write.expand().iter().collect();
        for cap in OperatorPolicy::Read.expand() {
            assert!(
                op_write.contains(cap),
                "operator write must include read's {cap}"
            );
        }
    }

    #[test]
    fn a_set_holding_deny_grants_nothing_after_collapse() {
        let mut set = BTreeSet::from([VariableCapability::Read, VariableCapability::Deny]);
        collapse_deny(&mut set);
        assert_eq!(
            set,
            BTreeSet::from([VariableCapability::Deny]),
            "deny must clear the rest"
        );
        assert!(
            !grants(&set, VariableCapability::Read),
            "read must not be granted"
        );
        assert!(
            !grants(&set, VariableCapability::Deny),
            "deny is never a grant"
        );
    }
}
