//! The HCL front end: turns policy text into the neutral [`Body`] tree, keeping line numbers.
//!
//! Called only by [`super::parse`]. It uses `hcl-edit` (re-exported by `hcl-rs`) rather than
//! `hcl-rs`'s own body type because only the former keeps source spans, and every grammar error
//! should name its line.
//!
//! Known shortcoming: this is an HCL 2 parser and Nomad policies are HCL 1. The two agree on the
//! forms policies use, but HCL 1 also accepts a one-line block holding another block
//! (`variables { path "x" { ... } }` on one line), which is rejected here as a syntax error
//! naming the line; writing the block over several lines works. Accepting it would take an
//! HCL 1 reader.

use hcl::edit::Span;
use hcl::edit::expr::Expression;
use hcl::edit::structure::{self as hcl_structure, Structure};

use super::{Attribute, Block, Body, Item, Value};
use crate::error::PolicyError;

/// Byte offsets at which each line of the text starts, to turn spans into line numbers.
struct LineIndex {
    starts: Vec<usize>,
}

/// Parses HCL text into the neutral tree.
pub(super) fn parse(text: &str) -> Result<Body, PolicyError> {
    let body = hcl::edit::parser::parse_body(text).map_err(|err| PolicyError::HclSyntax {
        line: err.location().line(),
        column: err.location().column(),
        message: err.message().to_owned(),
    })?;
    let lines = LineIndex::new(text);
    Ok(convert_body(&body, &lines))
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let newlines = text.match_indices('\n').map(|(at, _)| at + 1);
        LineIndex {
            starts: std::iter::once(0).chain(newlines).collect(),
        }
    }

    /// The one-based line holding the start of `span`, when the parser recorded one.
    fn line_of(&self, span: Option<std::ops::Range<usize>>) -> Option<usize> {
        let offset = span?.start;
        Some(self.starts.partition_point(|start| *start <= offset))
    }
}

fn convert_body(body: &hcl_structure::Body, lines: &LineIndex) -> Body {
    let items = body
        .iter()
        .map(|structure| match structure {
            Structure::Attribute(attr) => Item::Attribute(Attribute {
                key: attr.key.as_str().to_owned(),
                value: convert_value(&attr.value, lines),
                line: lines.line_of(attr.span()),
            }),
            Structure::Block(block) => Item::Block(Block {
                ident: block.ident.as_str().to_owned(),
                labels: block
                    .labels
                    .iter()
                    .map(|label| label.as_str().to_owned())
                    .collect(),
                body: convert_body(&block.body, lines),
                line: lines.line_of(block.span()),
            }),
        })
        .collect();
    Body { items }
}

fn convert_value(expr: &Expression, lines: &LineIndex) -> Value {
    match expr {
        Expression::String(text) => Value::String(text.value().clone()),
        Expression::Array(array) => Value::List(
            array
                .iter()
                .map(|element| (convert_value(element, lines), lines.line_of(element.span())))
                .collect(),
        ),
        _ => Value::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_carry_the_line_they_start_on() {
        let body = parse("\n\nnamespace \"a\" {\n  policy = \"read\"\n}\n").unwrap();
        let Item::Block(block) = &body.items[0] else {
            panic!("expected a block")
        };
        assert_eq!(block.line, Some(3), "the block starts on the third line");
        let Item::Attribute(attr) = &block.body.items[0] else {
            panic!("expected an attribute")
        };
        assert_eq!(
            attr.line,
            Some(4),
            "the attribute starts on the fourth line"
        );
    }

    #[test]
    fn list_elements_carry_their_own_line() {
        let body = parse("capabilities = [\n  \"a\",\n  \"b\",\n]\n").unwrap();
        let Item::Attribute(attr) = &body.items[0] else {
            panic!("expected an attribute")
        };
        let Value::List(elements) = &attr.value else {
            panic!("expected a list")
        };
        let lines: Vec<_> = elements.iter().map(|(_, line)| *line).collect();
        assert_eq!(lines, vec![Some(2), Some(3)], "each element keeps its line");
    }

    #[test]
    fn templates_are_not_plain_strings() {
        let body = parse("policy = \"${var.x}\"\n").unwrap();
        let Item::Attribute(attr) = &body.items[0] else {
            panic!("expected an attribute")
        };
        assert!(
            matches!(attr.value, Value::Other),
            "an interpolation must not pass as text"
        );
    }
}
