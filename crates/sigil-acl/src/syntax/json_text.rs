//! The JSON front end: turns policy JSON (Nomad's HCL-JSON shape) into the neutral [`Body`] tree.
//!
//! Called only by [`super::parse`]. JSON does not say which keys are blocks, so the block kinds
//! of the grammar are named here. Objects are read into an ordered list of pairs instead of a
//! map so that a repeated key reaches the grammar, which rejects it as a duplicate, instead of
//! silently replacing the first.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{Attribute, Block, Body, Item, Value};
use crate::error::PolicyError;

/// A JSON value that keeps object keys in order, repeats included.
enum Json {
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
    Scalar,
}

/// How a key that names a block takes its label.
#[derive(Clone, Copy)]
enum BlockShape {
    /// `"namespace": {"<label>": {...}}`.
    Labelled,
    /// `"operator": {...}`.
    Unlabelled,
}

/// Parses JSON text into the neutral tree.
pub(super) fn parse(text: &str) -> Result<Body, PolicyError> {
    let json: Json = serde_json::from_str(text).map_err(|err| {
        let suffix = format!(" at line {} column {}", err.line(), err.column());
        let message = err.to_string();
        PolicyError::JsonSyntax {
            line: err.line(),
            column: err.column(),
            message: message.strip_suffix(&suffix).unwrap_or(&message).to_owned(),
        }
    })?;
    match json {
        Json::Object(fields) => Ok(object_body(fields)),
        // Unreachable through `super::parse`, which only sends text that starts with `{`.
        _ => Ok(Body::default()),
    }
}

/// The block kinds of the policy grammar. Every block kind has a distinct name, so one table
/// serves every level of the document.
fn block_shape(key: &str) -> Option<BlockShape> {
    match key {
        "namespace" | "path" => Some(BlockShape::Labelled),
        "operator" | "variables" => Some(BlockShape::Unlabelled),
        _ => None,
    }
}

fn object_body(fields: Vec<(String, Json)>) -> Body {
    let mut items = Vec::new();
    for (key, value) in fields {
        match block_shape(&key) {
            Some(shape) => blocks(&key, shape, value, &mut items),
            None => items.push(attribute(key, value)),
        }
    }
    Body { items }
}

/// Expands one block key into its blocks. HCL-JSON allows both `{"a": {...}, "b": {...}}` and
/// `[{"a": {...}}, {"b": {...}}]`, and a body may itself be a list of bodies.
///
/// A value of the wrong shape becomes an attribute, which the grammar then rejects as "must be a
/// block" with the block's position.
fn blocks(ident: &str, shape: BlockShape, value: Json, items: &mut Vec<Item>) {
    match (shape, value) {
        (_, Json::Array(elements)) => {
            for element in elements {
                blocks(ident, shape, element, items);
            }
        }
        (BlockShape::Unlabelled, Json::Object(fields)) => {
            items.push(block(ident, Vec::new(), fields));
        }
        (BlockShape::Labelled, Json::Object(labelled)) => {
            for (label, body) in labelled {
                labelled_bodies(ident, label, body, items);
            }
        }
        (_, other) => items.push(attribute(ident.to_owned(), other)),
    }
}

fn labelled_bodies(ident: &str, label: String, body: Json, items: &mut Vec<Item>) {
    match body {
        Json::Object(fields) => items.push(block(ident, vec![label], fields)),
        Json::Array(bodies) => {
            for body in bodies {
                labelled_bodies(ident, label.clone(), body, items);
            }
        }
        other => items.push(attribute(ident.to_owned(), other)),
    }
}

fn block(ident: &str, labels: Vec<String>, fields: Vec<(String, Json)>) -> Item {
    Item::Block(Block {
        ident: ident.to_owned(),
        labels,
        body: object_body(fields),
        line: None,
    })
}

fn attribute(key: String, value: Json) -> Item {
    Item::Attribute(Attribute {
        key,
        value: value.into_value(),
        line: None,
    })
}

impl Json {
    fn into_value(self) -> Value {
        match self {
            Json::String(text) => Value::String(text),
            Json::Array(elements) => Value::List(
                elements
                    .into_iter()
                    .map(|element| (element.into_value(), None))
                    .collect(),
            ),
            Json::Object(_) | Json::Scalar => Value::Other,
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// Builds a [`Json`] from whatever the JSON parser reports.
struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Json, E> {
        Ok(Json::Scalar)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Json, E> {
        Ok(Json::Scalar)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Json, E> {
        Ok(Json::Scalar)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Json, E> {
        Ok(Json::Scalar)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Scalar)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Json, E> {
        Ok(Json::String(text.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut elements = Vec::new();
        while let Some(element) = seq.next_element()? {
            elements.push(element);
        }
        Ok(Json::Array(elements))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut fields = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Json>()? {
            fields.push((key, value));
        }
        Ok(Json::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels_of(body: &Body) -> Vec<(String, Vec<String>)> {
        body.items
            .iter()
            .filter_map(|item| match item {
                Item::Block(block) => Some((block.ident.clone(), block.labels.clone())),
                Item::Attribute(_) => None,
            })
            .collect()
    }

    #[test]
    fn object_and_list_forms_of_labelled_blocks_give_the_same_blocks() {
        let object = parse(r#"{"namespace": {"a": {}, "b": {}}}"#).unwrap();
        let list = parse(r#"{"namespace": [{"a": {}}, {"b": {}}]}"#).unwrap();
        let expected = vec![
            ("namespace".to_owned(), vec!["a".to_owned()]),
            ("namespace".to_owned(), vec!["b".to_owned()]),
        ];
        assert_eq!(
            labels_of(&object),
            expected,
            "object form must yield one block per label"
        );
        assert_eq!(
            labels_of(&list),
            expected,
            "list form must yield one block per label"
        );
    }

    #[test]
    fn repeated_keys_are_kept_rather_than_replaced() {
        let body = parse(r#"{"namespace": {"a": {}, "a": {}}}"#).unwrap();
        assert_eq!(
            labels_of(&body).len(),
            2,
            "both copies must reach the grammar"
        );
    }

    #[test]
    fn syntax_errors_report_line_and_column_without_repeating_them() {
        let err = parse("{\n  \"namespace\": ,\n}").unwrap_err();
        let PolicyError::JsonSyntax { line, message, .. } = &err else {
            panic!("expected a JSON syntax error, got {err:?}");
        };
        assert_eq!(*line, 2, "the error is on the second line");
        assert!(
            !message.contains("at line"),
            "the message must not repeat the position"
        );
    }
}
