//! A format-neutral tree of a policy document, built from HCL or JSON text.
//!
//! [`crate::PolicyRules::parse`] calls [`parse`], then validates the tree against the grammar in
//! [`crate::rules`]. Both front ends produce the same tree, so the grammar and its error messages
//! are written once; HCL items carry the line they start on, JSON items carry none.

mod hcl_text;
mod json_text;

use crate::error::PolicyError;

/// The contents of a document or of one block, in source order.
#[derive(Debug, Default)]
pub(crate) struct Body {
    /// Attributes and blocks, in the order they were written.
    pub items: Vec<Item>,
}

/// One entry of a body.
#[derive(Debug)]
pub(crate) enum Item {
    /// `key = value`.
    Attribute(Attribute),
    /// `ident "label" { ... }`.
    Block(Block),
}

/// `key = value`.
#[derive(Debug)]
pub(crate) struct Attribute {
    /// The key as written.
    pub key: String,
    /// The value, reduced to what the grammar can use.
    pub value: Value,
    /// One-based line where the attribute starts, for HCL input.
    pub line: Option<usize>,
}

/// An attribute value. The grammar only ever wants strings and lists of strings, so every other
/// kind of value is kept only as "something else" for the error message.
#[derive(Debug)]
pub(crate) enum Value {
    /// A literal string.
    String(String),
    /// A list, with the line of each element when known.
    List(Vec<(Value, Option<usize>)>),
    /// Anything else: numbers, booleans, objects, templates, expressions.
    Other,
}

/// `ident "label" ... { body }`.
#[derive(Debug)]
pub(crate) struct Block {
    /// The block kind, such as `namespace`.
    pub ident: String,
    /// The labels, in order.
    pub labels: Vec<String>,
    /// The block's contents.
    pub body: Body,
    /// One-based line where the block starts, for HCL input.
    pub line: Option<usize>,
}

/// Parses `text` as JSON when its first non-space character is `{`, and as HCL otherwise.
pub(crate) fn parse(text: &str) -> Result<Body, PolicyError> {
    if text.trim_start().starts_with('{') {
        json_text::parse(text)
    } else {
        hcl_text::parse(text)
    }
}
