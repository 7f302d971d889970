//! Strict parsing: every malformed policy is rejected with an error that names the block, the
//! field and, for HCL, the line; for both HCL and JSON input.
//!
//! These tests call [`PolicyRules::parse`] the way the server does when a policy is written.

use sigil_acl::{PolicyError, PolicyRules, Position};

fn error(text: &str) -> PolicyError {
    match PolicyRules::parse(text) {
        Ok(rules) => panic!("expected an error for:\n{text}\ngot {rules:?}"),
        Err(err) => err,
    }
}

fn at(block: &str, line: Option<usize>) -> Position {
    Position {
        block: block.to_owned(),
        line,
    }
}

// --- HCL -------------------------------------------------------------------------------------

#[test]
fn hcl_syntax_errors_report_line_and_column() {
    let err = error("namespace \"default\" {\n  policy = \n}\n");
    let PolicyError::HclSyntax { line, column, .. } = &err else {
        panic!("expected HclSyntax, got {err:?}");
    };
    assert!(
        *line >= 2,
        "the error is at or after the unfinished attribute, got line {line}"
    );
    assert!(*column >= 1, "columns are one-based, got {column}");
    assert!(
        err.to_string().contains(&format!("line {line}")),
        "message names the line: {err}"
    );
}

#[test]
fn hcl_documents_without_blocks_are_rejected() {
    assert_eq!(
        error(""),
        PolicyError::EmptyPolicy,
        "an empty document has no rules"
    );
    assert_eq!(
        error("# only a comment\n"),
        PolicyError::EmptyPolicy,
        "comments are not rules"
    );
}

#[test]
fn hcl_unknown_top_level_blocks_are_named_with_their_line() {
    let err = error("namespace \"a\" {}\nnode_pool \"x\" {\n  policy = \"read\"\n}\n");
    let expected = PolicyError::UnknownKey {
        key: "node_pool".into(),
        at: at("", Some(2)),
    };
    assert_eq!(err, expected, "node_pool is not part of Sigil's grammar");
    assert_eq!(
        err.to_string(),
        "unknown key `node_pool` at top level (line 2)",
        "the message names the key and line"
    );
}

#[test]
fn hcl_unknown_attributes_name_the_enclosing_namespace() {
    let err = error("namespace \"default\" {\n  polcy = \"read\"\n}\n");
    let expected = PolicyError::UnknownKey {
        key: "polcy".into(),
        at: at("namespace \"default\"", Some(2)),
    };
    assert_eq!(err, expected, "a misspelt key is rejected where it is");
    assert!(
        err.to_string().contains("namespace \"default\""),
        "message names the block: {err}"
    );
}

#[test]
fn hcl_unknown_keys_inside_path_blocks_are_rejected() {
    let text = "namespace \"a\" {\n  variables {\n    path \"x\" {\n      capabilities = []\n      \
                ttl = \"1h\"\n    }\n  }\n}\n";
    let expected = PolicyError::UnknownKey {
        key: "ttl".into(),
        at: at("namespace \"a\" > variables > path \"x\"", Some(5)),
    };
    assert_eq!(
        error(text),
        expected,
        "path blocks accept only capabilities"
    );
}

#[test]
fn hcl_unknown_namespace_policies_list_the_accepted_ones() {
    let err = error("namespace \"default\" {\n  policy = \"admin\"\n}\n");
    let expected = PolicyError::UnknownPolicy {
        value: "admin".into(),
        allowed: "deny, read, write, scale",
        at: at("namespace \"default\"", Some(2)),
    };
    assert_eq!(err, expected, "admin is not a namespace shorthand");
    assert!(
        err.to_string().contains("`policy`"),
        "message names the field: {err}"
    );
}

#[test]
fn hcl_operator_rejects_the_scale_shorthand() {
    let expected = PolicyError::UnknownPolicy {
        value: "scale".into(),
        allowed: "deny, read, write",
        at: at("operator", Some(1)),
    };
    assert_eq!(
        error("operator { policy = \"scale\" }"),
        expected,
        "scale is namespace-only"
    );
}

#[test]
fn hcl_unknown_capabilities_report_the_line_of_the_element() {
    let text = "namespace \"default\" {\n  capabilities = [\n    \"read-job\",\n    \
                \"submit-jobs\",\n  ]\n}\n";
    let expected = PolicyError::UnknownCapability {
        value: "submit-jobs".into(),
        at: at("namespace \"default\"", Some(4)),
    };
    let err = error(text);
    assert_eq!(err, expected, "the misspelt element is on line 4");
    assert!(
        err.to_string().contains("`capabilities`"),
        "message names the field: {err}"
    );
}

#[test]
fn hcl_capabilities_of_one_block_kind_are_unknown_in_another() {
    let operator = error("operator { capabilities = [\"submit-job\"] }");
    assert!(
        matches!(&operator, PolicyError::UnknownCapability { value, .. } if value == "submit-job"),
        "submit-job is not an operator capability, got {operator:?}"
    );
    let text = "namespace \"a\" {\n  variables {\n    path \"x\" { capabilities = [\"admin\"] }\n  \
                }\n}\n";
    let expected = PolicyError::UnknownCapability {
        value: "admin".into(),
        at: at("namespace \"a\" > variables > path \"x\"", Some(3)),
    };
    assert_eq!(error(text), expected, "admin is not a variables capability");
}

#[test]
fn hcl_duplicate_namespace_blocks_are_rejected_at_the_second() {
    let text = "namespace \"a\" {}\nnamespace \"b\" {}\nnamespace \"a\" {}\n";
    let expected = PolicyError::DuplicateBlock {
        block: "namespace \"a\"".into(),
        at: at("", Some(3)),
    };
    assert_eq!(
        error(text),
        expected,
        "the second namespace \"a\" is on line 3"
    );
}

#[test]
fn hcl_duplicate_operator_variables_and_path_blocks_are_rejected() {
    let operator = error("operator { policy = \"read\" }\noperator { policy = \"write\" }\n");
    let expected = PolicyError::DuplicateBlock {
        block: "operator".into(),
        at: at("", Some(2)),
    };
    assert_eq!(operator, expected, "one operator block only");

    let variables = error(
        "namespace \"a\" {\n  variables {\n    path \"x\" { capabilities = [] }\n  }\n  \
         variables {\n    path \"y\" { capabilities = [] }\n  }\n}\n",
    );
    let expected = PolicyError::DuplicateBlock {
        block: "variables".into(),
        at: at("namespace \"a\"", Some(5)),
    };
    assert_eq!(variables, expected, "one variables block per namespace");

    let path = error(
        "namespace \"a\" {\n  variables {\n    path \"x\" { capabilities = [] }\n    \
         path \"x\" { capabilities = [\"read\"] }\n  }\n}\n",
    );
    let expected = PolicyError::DuplicateBlock {
        block: "path \"x\"".into(),
        at: at("namespace \"a\" > variables", Some(4)),
    };
    assert_eq!(path, expected, "one block per path");
}

/// The HCL parser itself refuses a redefined attribute, so this surfaces as a syntax error that
/// carries the line; JSON reaches the grammar's own check (see the JSON test below).
#[test]
fn hcl_duplicate_attributes_are_rejected_with_their_line() {
    let err = error("namespace \"a\" {\n  policy = \"read\"\n  policy = \"write\"\n}\n");
    let PolicyError::HclSyntax { line, message, .. } = &err else {
        panic!("expected HclSyntax, got {err:?}");
    };
    assert_eq!(*line, 3, "the second policy attribute is on line 3");
    assert!(
        message.contains("redefined attribute"),
        "the parser says why: {message}"
    );
}

#[test]
fn hcl_namespace_labels_outside_the_allowed_alphabet_or_length_are_rejected() {
    let too_long = "a".repeat(129);
    for label in ["has space", "under_score", "dot.ted", "", too_long.as_str()] {
        let err = error(&format!("namespace \"{label}\" {{}}\n"));
        let expected = PolicyError::InvalidNamespaceLabel {
            label: label.into(),
            at: at("", Some(1)),
        };
        assert_eq!(err, expected, "label {label:?} must be rejected");
    }
    let longest = "a".repeat(128);
    for label in ["*", "prod-*", "a-b-1", longest.as_str()] {
        let text = format!("namespace \"{label}\" {{}}\n");
        assert!(
            PolicyRules::parse(&text).is_ok(),
            "label {label:?} must be accepted"
        );
    }
}

#[test]
fn hcl_blocks_with_the_wrong_number_of_labels_are_rejected() {
    let missing = error("namespace {\n  policy = \"read\"\n}\n");
    let expected = PolicyError::WrongLabelCount {
        block: "namespace".into(),
        expected: 1,
        found: 0,
        at: at("", Some(1)),
    };
    assert_eq!(missing, expected, "namespace needs its label");

    let extra = error("operator \"x\" {}\n");
    let expected = PolicyError::WrongLabelCount {
        block: "operator".into(),
        expected: 0,
        found: 1,
        at: at("", Some(1)),
    };
    assert_eq!(extra, expected, "operator takes no label");
}

#[test]
fn hcl_variables_paths_must_be_relative_and_not_empty() {
    let cases = [
        ("/abs/path", "must not start with '/'"),
        ("", "must not be empty"),
    ];
    for (path, reason) in cases {
        let text = format!(
            "namespace \"a\" {{\n  variables {{\n    path \"{path}\" {{ capabilities = [] }}\n  \
             }}\n}}\n"
        );
        let expected = PolicyError::InvalidVariablePath {
            path: path.into(),
            reason,
            at: at("namespace \"a\" > variables", Some(3)),
        };
        assert_eq!(error(&text), expected, "path {path:?}");
    }
}

#[test]
fn hcl_variables_blocks_without_paths_are_rejected() {
    let err = error("namespace \"a\" {\n  policy = \"read\"\n  variables {\n  }\n}\n");
    let expected = PolicyError::EmptyVariables {
        at: at("namespace \"a\"", Some(3)),
    };
    assert_eq!(err, expected, "an empty variables block is a mistake");
    assert!(
        err.to_string().contains("`variables`"),
        "message names the block: {err}"
    );
}

#[test]
fn hcl_path_blocks_without_capabilities_are_rejected() {
    let err = error("namespace \"a\" {\n  variables {\n    path \"x\" {\n    }\n  }\n}\n");
    let expected = PolicyError::MissingAttribute {
        key: "capabilities".into(),
        at: at("namespace \"a\" > variables > path \"x\"", Some(3)),
    };
    assert_eq!(err, expected, "a path block must say what it grants");
}

#[test]
fn hcl_values_of_the_wrong_type_are_rejected() {
    let cases = [
        ("policy = 5", "policy", "a string"),
        ("policy = \"${x}\"", "policy", "a string"),
        (
            "capabilities = \"read-job\"",
            "capabilities",
            "a list of strings",
        ),
        (
            "capabilities = [\"read-job\", 1]",
            "capabilities",
            "a list of strings",
        ),
    ];
    for (attribute, key, expected_type) in cases {
        let err = error(&format!("namespace \"a\" {{\n  {attribute}\n}}\n"));
        let expected = PolicyError::WrongType {
            key: key.into(),
            expected: expected_type,
            at: at("namespace \"a\"", Some(2)),
        };
        assert_eq!(err, expected, "{attribute}");
    }
}

#[test]
fn hcl_attributes_written_as_blocks_and_blocks_written_as_attributes_are_rejected() {
    let as_block = error("namespace \"a\" {\n  policy {\n  }\n}\n");
    let expected = PolicyError::ExpectedAttribute {
        key: "policy".into(),
        at: at("namespace \"a\"", Some(2)),
    };
    assert_eq!(as_block, expected, "policy is an attribute");

    let as_attribute = error("namespace \"a\" {\n  variables = {}\n}\n");
    let expected = PolicyError::ExpectedBlock {
        key: "variables".into(),
        at: at("namespace \"a\"", Some(2)),
    };
    assert_eq!(as_attribute, expected, "variables is a block");
}

// --- JSON ------------------------------------------------------------------------------------

#[test]
fn json_syntax_errors_report_line_and_column() {
    let err = error("{\n  \"namespace\": {\n    \"default\": {\"policy\": \"read\",}\n  }\n}");
    let PolicyError::JsonSyntax { line, .. } = &err else {
        panic!("expected JsonSyntax, got {err:?}");
    };
    assert_eq!(*line, 3, "the trailing comma is on line 3");
}

#[test]
fn json_documents_without_blocks_are_rejected() {
    assert_eq!(
        error("{}"),
        PolicyError::EmptyPolicy,
        "an empty object has no rules"
    );
    assert_eq!(
        error("  {\"namespace\": {}}"),
        PolicyError::EmptyPolicy,
        "no namespaces named"
    );
}

#[test]
fn json_unknown_keys_are_named_without_a_line() {
    let err = error(r#"{"namespace": {"default": {"policy": "read", "polcy": "x"}}}"#);
    let expected = PolicyError::UnknownKey {
        key: "polcy".into(),
        at: at("namespace \"default\"", None),
    };
    assert_eq!(err, expected, "misspelt key inside the namespace");
    assert_eq!(
        error(r#"{"agent": {"policy": "read"}}"#),
        PolicyError::UnknownKey {
            key: "agent".into(),
            at: at("", None)
        },
        "agent is not part of Sigil's grammar"
    );
}

#[test]
fn json_unknown_capabilities_and_policies_name_the_block() {
    let cap = error(r#"{"namespace": {"default": {"capabilities": ["read-job", "nope"]}}}"#);
    let expected = PolicyError::UnknownCapability {
        value: "nope".into(),
        at: at("namespace \"default\"", None),
    };
    assert_eq!(cap, expected, "nope is not a capability");

    let policy = error(r#"{"operator": {"policy": "root"}}"#);
    let expected = PolicyError::UnknownPolicy {
        value: "root".into(),
        allowed: "deny, read, write",
        at: at("operator", None),
    };
    assert_eq!(policy, expected, "root is not an operator shorthand");
}

#[test]
fn json_repeated_namespace_keys_are_duplicates_not_overrides() {
    let repeated = error(r#"{"namespace": {"a": {"policy": "read"}, "a": {"policy": "write"}}}"#);
    let expected = PolicyError::DuplicateBlock {
        block: "namespace \"a\"".into(),
        at: at("", None),
    };
    assert_eq!(
        repeated, expected,
        "a repeated key must not silently replace the first"
    );

    let listed = error(r#"{"namespace": [{"a": {}}, {"a": {}}]}"#);
    assert_eq!(listed, expected, "the list form repeats the block too");

    let operators = error(r#"{"operator": [{"policy": "read"}, {"policy": "write"}]}"#);
    let expected = PolicyError::DuplicateBlock {
        block: "operator".into(),
        at: at("", None),
    };
    assert_eq!(operators, expected, "one operator block only");
}

#[test]
fn json_duplicate_attributes_are_rejected() {
    let err = error(r#"{"namespace": {"a": {"policy": "read", "policy": "write"}}}"#);
    let expected = PolicyError::DuplicateAttribute {
        key: "policy".into(),
        at: at("namespace \"a\"", None),
    };
    assert_eq!(
        err, expected,
        "a repeated attribute must not silently replace the first"
    );
}

#[test]
fn json_blocks_of_the_wrong_shape_are_rejected() {
    let err = error(r#"{"namespace": "default"}"#);
    let expected = PolicyError::ExpectedBlock {
        key: "namespace".into(),
        at: at("", None),
    };
    assert_eq!(err, expected, "namespace must map labels to objects");

    let err = error(r#"{"namespace": {"default": {"policy": 1}}}"#);
    let expected = PolicyError::WrongType {
        key: "policy".into(),
        expected: "a string",
        at: at("namespace \"default\"", None),
    };
    assert_eq!(err, expected, "policy must be a string");
}

#[test]
fn json_variables_rules_are_validated_like_hcl() {
    let path =
        error(r#"{"namespace": {"a": {"variables": {"path": {"/x": {"capabilities": []}}}}}}"#);
    let expected = PolicyError::InvalidVariablePath {
        path: "/x".into(),
        reason: "must not start with '/'",
        at: at("namespace \"a\" > variables", None),
    };
    assert_eq!(path, expected, "absolute paths are rejected");

    let empty = error(r#"{"namespace": {"a": {"variables": {}}}}"#);
    let expected = PolicyError::EmptyVariables {
        at: at("namespace \"a\"", None),
    };
    assert_eq!(
        empty, expected,
        "a variables object without paths is rejected"
    );

    let label = error(r#"{"namespace": {"a b": {}}}"#);
    let expected = PolicyError::InvalidNamespaceLabel {
        label: "a b".into(),
        at: at("", None),
    };
    assert_eq!(label, expected, "labels are checked in JSON too");
}

#[test]
fn json_and_hcl_forms_of_the_same_policy_parse_to_equal_rules() {
    let hcl = r#"
        namespace "default" {
          policy       = "read"
          capabilities = ["submit-job"]
          variables {
            path "app/*" { capabilities = ["read", "write"] }
          }
        }
        operator { policy = "write" }
    "#;
    let json = r#"{
        "namespace": {"default": {
            "policy": "read",
            "capabilities": ["submit-job"],
            "variables": {"path": {"app/*": {"capabilities": ["read", "write"]}}}
        }},
        "operator": {"policy": "write"}
    }"#;
    assert_eq!(
        PolicyRules::parse(json).unwrap(),
        PolicyRules::parse(hcl).unwrap(),
        "the two syntaxes must describe the same rules"
    );
}
