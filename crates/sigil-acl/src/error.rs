//! The one error type of this crate, returned when a policy, its name or its job association is
//! rejected.
//!
//! Produced by [`crate::PolicyRules::parse`], [`crate::AclPolicy::new`] and
//! [`crate::JobAcl::validate`]; the server maps every variant to `InvalidArgument`, so each
//! message names the block and field that is wrong, and the line when the parser reports one.

use std::fmt;

use thiserror::Error;

/// Where in a policy document a problem was found: the enclosing block and, for HCL input, the
/// line (JSON input has no line for anything past a syntax error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    /// The chain of enclosing blocks, such as `namespace "default" > variables`; empty at the
    /// top level of the document.
    pub block: String,
    /// One-based line number, when known.
    pub line: Option<usize>,
}

/// Why a policy document, policy name, description or job association was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PolicyError {
    /// The HCL text could not be parsed at all.
    #[error("HCL syntax error at line {line}, column {column}: {message}")]
    HclSyntax {
        /// One-based line of the error.
        line: usize,
        /// One-based column of the error.
        column: usize,
        /// The parser's description.
        message: String,
    },

    /// The JSON text could not be parsed at all.
    #[error("JSON syntax error at line {line}, column {column}: {message}")]
    JsonSyntax {
        /// One-based line of the error.
        line: usize,
        /// One-based column of the error.
        column: usize,
        /// The parser's description.
        message: String,
    },

    /// The document parsed but holds no `namespace` or `operator` block.
    #[error("policy has no rules: expected at least one `namespace` or `operator` block")]
    EmptyPolicy,

    /// A key that this grammar does not know, at this place in the document.
    #[error("unknown key `{key}` {at}")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// Where it was found.
        at: Position,
    },

    /// A key that must be a block was written as an attribute (or, in JSON, not as an object).
    #[error("`{key}` {at} must be a block")]
    ExpectedBlock {
        /// The key as written.
        key: String,
        /// Where it was found.
        at: Position,
    },

    /// A key that must be an attribute was written as a block.
    #[error("`{key}` {at} must be an attribute, not a block")]
    ExpectedAttribute {
        /// The key as written.
        key: String,
        /// Where it was found.
        at: Position,
    },

    /// A block was given a different number of labels than its kind takes.
    #[error("`{block}` block {at} takes {expected} label(s) but has {found}")]
    WrongLabelCount {
        /// The block kind, such as `namespace`.
        block: String,
        /// How many labels that kind takes.
        expected: usize,
        /// How many were written.
        found: usize,
        /// Where it was found.
        at: Position,
    },

    /// The same block (same kind and label) appears twice in one document.
    #[error("duplicate block {block} {at}")]
    DuplicateBlock {
        /// The repeated block, such as `namespace "default"`.
        block: String,
        /// Where the second one was found.
        at: Position,
    },

    /// The same attribute appears twice in one block.
    #[error("duplicate attribute `{key}` {at}")]
    DuplicateAttribute {
        /// The repeated attribute.
        key: String,
        /// Where the second one was found.
        at: Position,
    },

    /// An attribute that must be present is missing.
    #[error("missing attribute `{key}` {at}")]
    MissingAttribute {
        /// The missing attribute.
        key: String,
        /// The block that lacks it.
        at: Position,
    },

    /// An attribute holds a value of the wrong type, such as a number for `policy`.
    #[error("`{key}` {at} must be {expected}")]
    WrongType {
        /// The attribute.
        key: String,
        /// What it must hold.
        expected: &'static str,
        /// Where it was found.
        at: Position,
    },

    /// A `namespace` label that is not 1 to 128 letters, digits, `-` or `*`.
    #[error(
        "invalid namespace label {label:?} {at}: \
         must be 1 to 128 characters of letters, digits, '-' or '*'"
    )]
    InvalidNamespaceLabel {
        /// The label as written.
        label: String,
        /// Where it was found.
        at: Position,
    },

    /// A `policy` shorthand that this block does not accept.
    #[error("unknown `policy` value {value:?} {at}: expected one of {allowed}")]
    UnknownPolicy {
        /// The value as written.
        value: String,
        /// The accepted values, for the message.
        allowed: &'static str,
        /// Where it was found.
        at: Position,
    },

    /// A capability that this block does not accept.
    #[error("`capabilities` {at} lists unknown capability {value:?}")]
    UnknownCapability {
        /// The value as written.
        value: String,
        /// Where it was found.
        at: Position,
    },

    /// A variables `path` label that is empty or starts with `/`.
    #[error("invalid variables path {path:?} {at}: {reason}")]
    InvalidVariablePath {
        /// The path as written.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
        /// Where it was found.
        at: Position,
    },

    /// A `variables` block with no `path` blocks inside.
    #[error("`variables` block {at} has no `path` blocks")]
    EmptyVariables {
        /// Where it was found.
        at: Position,
    },

    /// A policy name that is not 1 to 128 letters, digits or `-`.
    #[error("invalid policy name {name:?}: must be 1 to 128 characters of letters, digits or '-'")]
    InvalidPolicyName {
        /// The name as given.
        name: String,
    },

    /// A policy description longer than [`crate::MAX_DESCRIPTION_CHARS`].
    #[error("policy description is {chars} characters long; at most {max} are allowed")]
    DescriptionTooLong {
        /// The description's length in characters.
        chars: usize,
        /// The limit.
        max: usize,
    },

    /// A job association with an empty `namespace`, which could attach to no workload.
    #[error("job ACL: `namespace` must not be empty")]
    JobAclWithoutNamespace,

    /// A job association whose `job`, `group` or `task` is present but empty.
    #[error("job ACL: `{field}` is set but empty; leave it out instead")]
    JobAclEmptyField {
        /// The empty field.
        field: &'static str,
    },

    /// A job association naming a group without a job.
    #[error("job ACL: `group` needs `job` to be set")]
    JobAclGroupWithoutJob,

    /// A job association naming a task without a group.
    #[error("job ACL: `task` needs `group` to be set")]
    JobAclTaskWithoutGroup,
}

impl Position {
    /// A position inside `block` (empty for the top level) on an optional line.
    pub(crate) fn new(block: &str, line: Option<usize>) -> Position {
        Position {
            block: block.to_owned(),
            line,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.block.is_empty() {
            f.write_str("at top level")?;
        } else {
            write!(f, "in {}", self.block)?;
        }
        match self.line {
            Some(line) => write!(f, " (line {line})"),
            None => Ok(()),
        }
    }
}
