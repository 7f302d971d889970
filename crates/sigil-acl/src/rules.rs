//! The policy grammar: [`PolicyRules`] and the strict validation that turns a parsed document
//! into it.
//!
//! The server calls [`PolicyRules::parse`] when a policy is written, and stores the result in
//! the replicated state; [`crate::Acl::compile`] reads it back when a token or workload is
//! resolved. Rules keep what the author wrote (the `policy` shorthand and the explicit
//! capabilities separately), and the `effective_capabilities` methods expand them, so a stored
//! policy always shows its source and the expansion lives in one place.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::capability::{
    NamespaceCapability, NamespacePolicy, OperatorCapability, OperatorPolicy, VariableCapability,
    collapse_deny,
};
use crate::error::{PolicyError, Position};
use crate::syntax::{self, Attribute, Block, Body, Item, Value};

/// The validated rules of one ACL policy: its `namespace` blocks and its `operator` block.
///
/// Invariants, established by [`PolicyRules::parse`]: at least one block; namespace names are
/// unique and match `^[a-zA-Z0-9-*]{1,128}$`; variables paths are unique within a namespace,
/// non-empty and do not start with `/`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRules {
    namespaces: Vec<NamespaceRule>,
    operator: Option<OperatorRule>,
}

/// One `namespace "<name or glob>" { ... }` block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceRule {
    name: String,
    policy: Option<NamespacePolicy>,
    capabilities: BTreeSet<NamespaceCapability>,
    variables: Vec<VariablePathRule>,
}

/// One `path "<path or glob>" { capabilities = [...] }` block inside `variables`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariablePathRule {
    path: String,
    capabilities: BTreeSet<VariableCapability>,
}

/// The `operator { ... }` block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorRule {
    policy: Option<OperatorPolicy>,
    capabilities: BTreeSet<OperatorCapability>,
}

/// The attributes and blocks of one body, already checked against what its block kind allows.
struct Fields<'a> {
    attributes: Vec<&'a Attribute>,
    blocks: Vec<&'a Block>,
}

const NAMESPACE_POLICIES: &str = "deny, read, write, scale";
const OPERATOR_POLICIES: &str = "deny, read, write";
const MAX_LABEL_CHARS: usize = 128;

impl PolicyRules {
    /// Parses and validates policy text: JSON when the first non-space character is `{`, HCL
    /// otherwise.
    ///
    /// Strict: unknown keys, unknown shorthands or capabilities, repeated blocks or attributes,
    /// bad labels or paths, an empty `variables` block and a document without blocks are all
    /// errors that name the block, the field and (for HCL) the line.
    pub fn parse(text: &str) -> Result<PolicyRules, PolicyError> {
        let body = syntax::parse(text)?;
        document(&body)
    }

    /// The `namespace` blocks, in the order they were written.
    pub fn namespaces(&self) -> &[NamespaceRule] {
        &self.namespaces
    }

    /// The `operator` block, if any.
    pub fn operator(&self) -> Option<&OperatorRule> {
        self.operator.as_ref()
    }

    /// Reports whether any block of these rules denies, for a namespace, a variables path or
    /// the operator capabilities.
    pub fn has_deny(&self) -> bool {
        let namespace_deny = self.namespaces.iter().any(|ns| {
            ns.effective_capabilities()
                .contains(&NamespaceCapability::Deny)
                || ns.variables.iter().any(|path| {
                    path.effective_capabilities()
                        .contains(&VariableCapability::Deny)
                })
        });
        let operator_deny = self.operator.as_ref().is_some_and(|op| {
            op.effective_capabilities()
                .contains(&OperatorCapability::Deny)
        });
        namespace_deny || operator_deny
    }

    /// Renders the rules as canonical HCL, which [`PolicyRules::parse`] reads back to an equal
    /// value. Shorthands stay shorthands; capabilities are listed in a fixed order.
    pub fn to_hcl(&self) -> String {
        let mut body = hcl::Body::builder();
        for namespace in &self.namespaces {
            body = body.add_block(namespace.to_hcl_block());
        }
        if let Some(operator) = &self.operator {
            body = body.add_block(operator.to_hcl_block());
        }
        // Formatting a body built from plain strings writes to memory and cannot fail.
        hcl::to_string(&body.build()).unwrap_or_default()
    }
}

impl NamespaceRule {
    /// The namespace name or glob from the block label.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `policy` shorthand, if written.
    pub fn policy(&self) -> Option<NamespacePolicy> {
        self.policy
    }

    /// The capabilities listed explicitly in `capabilities`.
    pub fn capabilities(&self) -> &BTreeSet<NamespaceCapability> {
        &self.capabilities
    }

    /// The `path` blocks of the `variables` block, in the order they were written; empty when
    /// there is no `variables` block.
    pub fn variables(&self) -> &[VariablePathRule] {
        &self.variables
    }

    /// What this block grants: the explicit capabilities, plus the shorthand's expansion, plus
    /// what those imply; exactly `{deny}` when any of them is `deny`.
    pub fn effective_capabilities(&self) -> BTreeSet<NamespaceCapability> {
        let expanded = self.policy.map(NamespacePolicy::expand).unwrap_or_default();
        let mut set: BTreeSet<_> = self.capabilities.iter().chain(expanded).copied().collect();
        let implied: Vec<_> = set.iter().flat_map(|cap| cap.implied()).copied().collect();
        set.extend(implied);
        collapse_deny(&mut set);
        set
    }

    fn to_hcl_block(&self) -> hcl::Block {
        let mut block = hcl::Block::builder("namespace").add_label(self.name.as_str());
        if let Some(policy) = self.policy {
            block = block.add_attribute(("policy", policy.as_str()));
        }
        if !self.capabilities.is_empty() {
            block =
                block.add_attribute(("capabilities", names(&self.capabilities, |c| c.as_str())));
        }
        if !self.variables.is_empty() {
            let paths = self.variables.iter().map(VariablePathRule::to_hcl_block);
            block = block.add_block(hcl::Block::builder("variables").add_blocks(paths).build());
        }
        block.build()
    }
}

impl VariablePathRule {
    /// The path or glob from the block label.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The capabilities as written.
    pub fn capabilities(&self) -> &BTreeSet<VariableCapability> {
        &self.capabilities
    }

    /// What this block grants: exactly `{deny}` when `deny` is listed, and `list` whenever
    /// `read` is.
    pub fn effective_capabilities(&self) -> BTreeSet<VariableCapability> {
        let mut set = self.capabilities.clone();
        if set.contains(&VariableCapability::Read) {
            set.insert(VariableCapability::List);
        }
        collapse_deny(&mut set);
        set
    }

    fn to_hcl_block(&self) -> hcl::Block {
        hcl::Block::builder("path")
            .add_label(self.path.as_str())
            .add_attribute(("capabilities", names(&self.capabilities, |c| c.as_str())))
            .build()
    }
}

impl OperatorRule {
    /// The `policy` shorthand, if written.
    pub fn policy(&self) -> Option<OperatorPolicy> {
        self.policy
    }

    /// The capabilities listed explicitly in `capabilities`.
    pub fn capabilities(&self) -> &BTreeSet<OperatorCapability> {
        &self.capabilities
    }

    /// What this block grants: the explicit capabilities plus the shorthand's expansion;
    /// exactly `{deny}` when any of them is `deny`.
    pub fn effective_capabilities(&self) -> BTreeSet<OperatorCapability> {
        let expanded = self.policy.map(OperatorPolicy::expand).unwrap_or_default();
        let mut set: BTreeSet<_> = self.capabilities.iter().chain(expanded).copied().collect();
        collapse_deny(&mut set);
        set
    }

    fn to_hcl_block(&self) -> hcl::Block {
        let mut block = hcl::Block::builder("operator");
        if let Some(policy) = self.policy {
            block = block.add_attribute(("policy", policy.as_str()));
        }
        if !self.capabilities.is_empty() {
            block =
                block.add_attribute(("capabilities", names(&self.capabilities, |c| c.as_str())));
        }
        block.build()
    }
}

impl<'a> Fields<'a> {
    /// Splits `body` into attributes and blocks, rejecting keys its block kind does not allow,
    /// keys used as the wrong kind, and repeated attributes.
    fn of(
        body: &'a Body,
        within: &str,
        attribute_keys: &[&str],
        block_keys: &[&str],
    ) -> Result<Fields<'a>, PolicyError> {
        let mut fields = Fields {
            attributes: Vec::new(),
            blocks: Vec::new(),
        };
        for item in &body.items {
            match item {
                Item::Attribute(attr) => {
                    let at = Position::new(within, attr.line);
                    let key = attr.key.clone();
                    if block_keys.contains(&attr.key.as_str()) {
                        return Err(PolicyError::ExpectedBlock { key, at });
                    }
                    if !attribute_keys.contains(&attr.key.as_str()) {
                        return Err(PolicyError::UnknownKey { key, at });
                    }
                    if fields.attribute(&attr.key).is_some() {
                        return Err(PolicyError::DuplicateAttribute { key, at });
                    }
                    fields.attributes.push(attr);
                }
                Item::Block(block) => {
                    let at = Position::new(within, block.line);
                    let key = block.ident.clone();
                    if attribute_keys.contains(&block.ident.as_str()) {
                        return Err(PolicyError::ExpectedAttribute { key, at });
                    }
                    if !block_keys.contains(&block.ident.as_str()) {
                        return Err(PolicyError::UnknownKey { key, at });
                    }
                    fields.blocks.push(block);
                }
            }
        }
        Ok(fields)
    }

    fn attribute(&self, key: &str) -> Option<&'a Attribute> {
        self.attributes.iter().copied().find(|attr| attr.key == key)
    }
}

/// Validates a whole document.
fn document(body: &Body) -> Result<PolicyRules, PolicyError> {
    let fields = Fields::of(body, "", &[], &["namespace", "operator"])?;

    let mut rules = PolicyRules {
        namespaces: Vec::new(),
        operator: None,
    };
    for block in fields.blocks {
        if block.ident == "namespace" {
            let name = namespace_label(block)?;
            if rules.namespaces.iter().any(|ns| ns.name == name) {
                let at = Position::new("", block.line);
                let block = format!("namespace {name:?}");
                return Err(PolicyError::DuplicateBlock { block, at });
            }
            rules.namespaces.push(namespace(block, name)?);
        } else {
            labels(block, "", 0)?;
            if rules.operator.is_some() {
                let at = Position::new("", block.line);
                return Err(PolicyError::DuplicateBlock {
                    block: "operator".to_owned(),
                    at,
                });
            }
            rules.operator = Some(operator(block)?);
        }
    }

    if rules.namespaces.is_empty() && rules.operator.is_none() {
        return Err(PolicyError::EmptyPolicy);
    }
    Ok(rules)
}

/// Validates one `namespace` block whose label has already been checked.
fn namespace(block: &Block, name: String) -> Result<NamespaceRule, PolicyError> {
    let within = format!("namespace {name:?}");
    let fields = Fields::of(
        &block.body,
        &within,
        &["policy", "capabilities"],
        &["variables"],
    )?;

    let policy = fields
        .attribute("policy")
        .map(|attr| shorthand(attr, &within, NamespacePolicy::parse, NAMESPACE_POLICIES))
        .transpose()?;
    let capabilities = fields
        .attribute("capabilities")
        .map(|attr| capability_list(attr, &within, NamespaceCapability::parse))
        .transpose()?
        .unwrap_or_default();

    let mut variables = None;
    for block in fields.blocks {
        if variables.is_some() {
            let at = Position::new(&within, block.line);
            return Err(PolicyError::DuplicateBlock {
                block: "variables".to_owned(),
                at,
            });
        }
        variables = Some(variables_block(block, &within)?);
    }

    let variables = variables.unwrap_or_default();
    Ok(NamespaceRule {
        name,
        policy,
        capabilities,
        variables,
    })
}

/// Checks a `namespace` block's single label against `^[a-zA-Z0-9-*]{1,128}$`.
fn namespace_label(block: &Block) -> Result<String, PolicyError> {
    let label = &labels(block, "", 1)?[0];
    let valid_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '*';
    let valid = (1..=MAX_LABEL_CHARS).contains(&label.len()) && label.chars().all(valid_char);
    if !valid {
        let at = Position::new("", block.line);
        return Err(PolicyError::InvalidNamespaceLabel {
            label: label.clone(),
            at,
        });
    }
    Ok(label.clone())
}

/// Validates a `variables` block: at least one `path`, each path unique and well formed.
fn variables_block(block: &Block, namespace: &str) -> Result<Vec<VariablePathRule>, PolicyError> {
    labels(block, namespace, 0)?;
    let within = format!("{namespace} > variables");
    let fields = Fields::of(&block.body, &within, &[], &["path"])?;

    let mut paths: Vec<VariablePathRule> = Vec::new();
    for path_block in fields.blocks {
        let path = variables_path(path_block, &within)?;
        if paths.iter().any(|known| known.path == path) {
            let at = Position::new(&within, path_block.line);
            return Err(PolicyError::DuplicateBlock {
                block: format!("path {path:?}"),
                at,
            });
        }
        let rule_within = format!("{within} > path {path:?}");
        let fields = Fields::of(&path_block.body, &rule_within, &["capabilities"], &[])?;
        let Some(attr) = fields.attribute("capabilities") else {
            let at = Position::new(&rule_within, path_block.line);
            return Err(PolicyError::MissingAttribute {
                key: "capabilities".to_owned(),
                at,
            });
        };
        let capabilities = capability_list(attr, &rule_within, VariableCapability::parse)?;
        paths.push(VariablePathRule { path, capabilities });
    }

    if paths.is_empty() {
        return Err(PolicyError::EmptyVariables {
            at: Position::new(namespace, block.line),
        });
    }
    Ok(paths)
}

/// Checks a `path` block's single label: not empty, not starting with `/`.
fn variables_path(block: &Block, within: &str) -> Result<String, PolicyError> {
    let path = labels(block, within, 1)?[0].clone();
    let reason = if path.is_empty() {
        "must not be empty"
    } else if path.starts_with('/') {
        "must not start with '/'"
    } else {
        return Ok(path);
    };
    let at = Position::new(within, block.line);
    Err(PolicyError::InvalidVariablePath { path, reason, at })
}

/// Validates the `operator` block.
fn operator(block: &Block) -> Result<OperatorRule, PolicyError> {
    let within = "operator";
    let fields = Fields::of(&block.body, within, &["policy", "capabilities"], &[])?;
    let policy = fields
        .attribute("policy")
        .map(|attr| shorthand(attr, within, OperatorPolicy::parse, OPERATOR_POLICIES))
        .transpose()?;
    let capabilities = fields
        .attribute("capabilities")
        .map(|attr| capability_list(attr, within, OperatorCapability::parse))
        .transpose()?
        .unwrap_or_default();
    Ok(OperatorRule {
        policy,
        capabilities,
    })
}

/// Returns the block's labels when there are exactly `expected` of them.
fn labels<'a>(
    block: &'a Block,
    within: &str,
    expected: usize,
) -> Result<&'a [String], PolicyError> {
    if block.labels.len() != expected {
        return Err(PolicyError::WrongLabelCount {
            block: block.ident.clone(),
            expected,
            found: block.labels.len(),
            at: Position::new(within, block.line),
        });
    }
    Ok(&block.labels)
}

/// Reads a `policy = "<shorthand>"` attribute.
fn shorthand<P>(
    attr: &Attribute,
    within: &str,
    parse: fn(&str) -> Option<P>,
    allowed: &'static str,
) -> Result<P, PolicyError> {
    let at = Position::new(within, attr.line);
    let Value::String(text) = &attr.value else {
        return Err(PolicyError::WrongType {
            key: attr.key.clone(),
            expected: "a string",
            at,
        });
    };
    parse(text).ok_or_else(|| PolicyError::UnknownPolicy {
        value: text.clone(),
        allowed,
        at,
    })
}

/// Reads a `capabilities = ["...", ...]` attribute; repeats are accepted and merged.
fn capability_list<C: Ord>(
    attr: &Attribute,
    within: &str,
    parse: fn(&str) -> Option<C>,
) -> Result<BTreeSet<C>, PolicyError> {
    let wrong_type = || PolicyError::WrongType {
        key: attr.key.clone(),
        expected: "a list of strings",
        at: Position::new(within, attr.line),
    };
    let Value::List(elements) = &attr.value else {
        return Err(wrong_type());
    };

    let mut set = BTreeSet::new();
    for (element, line) in elements {
        let Value::String(text) = element else {
            return Err(wrong_type());
        };
        let Some(cap) = parse(text) else {
            let at = Position::new(within, line.or(attr.line));
            return Err(PolicyError::UnknownCapability {
                value: text.clone(),
                at,
            });
        };
        set.insert(cap);
    }
    Ok(set)
}

/// The policy spellings of a capability set, for rendering.
fn names<C: Copy>(set: &BTreeSet<C>, name: fn(C) -> &'static str) -> Vec<&'static str> {
    set.iter().map(|cap| name(*cap)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthand_and_explicit_capabilities_are_kept_apart_and_expanded_together() {
        let rules = PolicyRules::parse(
            "namespace \"default\" {\n  policy = \"read\"\n  capabilities = [\"submit-job\"]\n}\n",
        )
        .unwrap();
        let ns = &rules.namespaces()[0];
        assert_eq!(
            ns.policy(),
            Some(NamespacePolicy::Read),
            "the shorthand is kept as written"
        );
        assert_eq!(
            ns.capabilities().len(),
            1,
            "only the explicit capability is listed"
        );
        let effective = ns.effective_capabilities();
        assert!(
            effective.contains(&NamespaceCapability::ReadJob),
            "read expands to read-job"
        );
        assert!(
            effective.contains(&NamespaceCapability::SubmitJob),
            "explicit caps are added"
        );
    }

    #[test]
    fn host_volume_write_implies_the_narrower_host_volume_capabilities() {
        let rules =
            PolicyRules::parse("namespace \"a\" { capabilities = [\"host-volume-write\"] }")
                .unwrap();
        let effective = rules.namespaces()[0].effective_capabilities();
        for cap in [
            NamespaceCapability::HostVolumeRegister,
            NamespaceCapability::HostVolumeCreate,
            NamespaceCapability::HostVolumeDelete,
            NamespaceCapability::HostVolumeRead,
        ] {
            assert!(
                effective.contains(&cap),
                "host-volume-write must imply {cap}"
            );
        }
    }

    #[test]
    fn canonical_hcl_reads_back_to_equal_rules() {
        let text = r#"
            namespace "prod-*" {
              policy       = "write"
              capabilities = ["alloc-node-exec", "deny"]
              variables {
                path "a/*" { capabilities = ["read", "destroy"] }
                path "b"   { capabilities = [] }
              }
            }
            operator { policy = "read" }
        "#;
        let rules = PolicyRules::parse(text).unwrap();
        let again = PolicyRules::parse(&rules.to_hcl()).unwrap();
        assert_eq!(again, rules, "to_hcl must round-trip:\n{}", rules.to_hcl());
    }

    #[test]
    fn has_deny_sees_deny_at_every_level() {
        let cases = [
            ("namespace \"a\" { policy = \"deny\" }", true),
            (
                "namespace \"a\" {\n variables {\n path \"x\" { capabilities = [\"deny\"] }\n }\n}",
                true,
            ),
            ("operator { capabilities = [\"deny\"] }", true),
            (
                "namespace \"a\" { policy = \"write\" }\noperator { policy = \"write\" }",
                false,
            ),
        ];
        for (text, expected) in cases {
            let rules = PolicyRules::parse(text).unwrap();
            assert_eq!(rules.has_deny(), expected, "has_deny for {text}");
        }
    }
}
