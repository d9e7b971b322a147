//! JSON bodies read strictly: an object that names a key twice is refused instead of keeping
//! the last value (`{"username": "nobody", "username": "admin"}` would otherwise log in as
//! admin, while a proxy or WAF that keeps the first saw someone else). Likewise a field
//! given under both its proto name and its lowerCamelCase JSON name.

use std::fmt;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses `bytes` as JSON, refusing any object with a repeated key.
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<StrictValue>(bytes).map(|strict| strict.0)
}

/// A JSON value whose objects have distinct keys.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        StrictValue::deserialize(deserializer).map(|strict| strict.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = sequence.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = entries.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate key {key:?}; send each key once"
                )));
            }
            let StrictValue(value) = entries.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// The first field of `descriptor` that `object` (or a message inside it) gives under both
/// its proto name and its JSON name, as an error for the caller.
pub(crate) fn field_named_twice(
    descriptor: &MessageDescriptor,
    object: &Map<String, Value>,
    prefix: &str,
) -> Option<String> {
    for field in descriptor.fields() {
        let path = if prefix.is_empty() {
            field.name().to_owned()
        } else {
            format!("{prefix}.{}", field.name())
        };
        if field.json_name() != field.name()
            && object.contains_key(field.name())
            && object.contains_key(field.json_name())
        {
            return Some(format!(
                "{path} is given twice, as {} and as {}; send it once",
                field.name(),
                field.json_name()
            ));
        }
        let value = object
            .get(field.name())
            .or_else(|| object.get(field.json_name()));
        if let Some(value) = value
            && let Some(nested) = nested_field_named_twice(&field, value, &path)
        {
            return Some(nested);
        }
    }
    None
}

fn nested_field_named_twice(field: &FieldDescriptor, value: &Value, path: &str) -> Option<String> {
    let Kind::Message(child) = field.kind() else {
        return None;
    };
    if field.is_map() || child.full_name().starts_with("google.protobuf.") {
        return None;
    }
    match value {
        Value::Object(object) => field_named_twice(&child, object, path),
        Value::Array(items) if field.is_list() => {
            items.iter().enumerate().find_map(|(index, item)| {
                let Value::Object(object) = item else {
                    return None;
                };
                field_named_twice(&child, object, &format!("{path}[{index}]"))
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_refused_at_any_depth() {
        let cases = [
            (
                r#"{"username": "nobody", "username": "admin"}"#,
                Some("username"),
            ),
            (
                r#"{"filter": {"country": "GB", "country": "MT"}}"#,
                Some("country"),
            ),
            (r#"[{"a": 1}, {"a": 2, "a": 3}]"#, Some("\"a\"")),
            (r#"{"username": "admin", "password": "x"}"#, None),
            (r#"{"a": [1, 2.5, -3, null, true, "s", {}]}"#, None),
        ];
        for (text, refused_key) in cases {
            let parsed = parse(text.as_bytes());
            match refused_key {
                Some(key) => {
                    let message = parsed.expect_err(text).to_string();
                    assert!(
                        message.contains("duplicate key") && message.contains(key),
                        "{text}: {message}"
                    );
                }
                None => assert_eq!(
                    parsed.expect(text),
                    serde_json::from_str::<Value>(text).expect(text),
                    "{text}"
                ),
            }
        }
    }
}
