//! Path and query values arrive as text; this turns one into the proto3 JSON value of its
//! field, with an error that says what was expected.

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Number, Value};

/// Converts `text` for the field at `field_path` (dotted, for messages) to its proto3 JSON
/// value. A repeated field's single element is converted the same way.
pub(crate) fn text_to_json(
    field_path: &str,
    field: &FieldDescriptor,
    text: &str,
) -> Result<Value, String> {
    if field.is_map() {
        return Err(format!(
            "{field_path}: a map field cannot be set from the path or query string; send it in the JSON body"
        ));
    }
    kind_to_json(field_path, &field.kind(), text)
}

fn kind_to_json(field_path: &str, kind: &Kind, text: &str) -> Result<Value, String> {
    let quoted = Value::String(text.to_owned());
    let expected = |what: &str| format!("{field_path}: expected {what}, got {quoted}");
    match kind {
        Kind::Double | Kind::Float => parse_float(text).ok_or_else(|| expected("a number")),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            parse_integer(text, i128::from(i32::MIN), i128::from(i32::MAX))
                .map_err(|range| expected(&range))
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            parse_integer(text, i128::from(i64::MIN), i128::from(i64::MAX))
                .map_err(|range| expected(&range))
        }
        Kind::Uint32 | Kind::Fixed32 => {
            parse_integer(text, 0, i128::from(u32::MAX)).map_err(|range| expected(&range))
        }
        Kind::Uint64 | Kind::Fixed64 => {
            parse_integer(text, 0, i128::from(u64::MAX)).map_err(|range| expected(&range))
        }
        Kind::Bool => match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(expected("true or false")),
        },
        Kind::String | Kind::Bytes => Ok(Value::String(text.to_owned())),
        Kind::Enum(enum_descriptor) => {
            if enum_descriptor.get_value_by_name(text).is_some() {
                return Ok(Value::String(text.to_owned()));
            }
            let known_number = text
                .parse::<i32>()
                .ok()
                .filter(|number| enum_descriptor.get_value(*number).is_some());
            if let Some(number) = known_number {
                return Ok(Value::from(number));
            }
            let names: Vec<String> = enum_descriptor
                .values()
                .map(|value| value.name().to_owned())
                .collect();
            Err(expected(&format!("one of {}", names.join(", "))))
        }
        Kind::Message(message) => message_to_json(field_path, message, text),
    }
}

/// Well-known types that have a single-string JSON form; other messages are set field by
/// field with dotted names.
fn message_to_json(
    field_path: &str,
    message: &MessageDescriptor,
    text: &str,
) -> Result<Value, String> {
    let expected_text = match message.full_name() {
        "google.protobuf.Timestamp" => Some("an RFC 3339 timestamp such as 2024-05-01T12:00:00Z"),
        "google.protobuf.Duration" => Some("a duration in seconds such as 1.5s"),
        "google.protobuf.FieldMask" => Some("comma-separated field names"),
        _ => None,
    };
    if let Some(expected_text) = expected_text {
        let value = Value::String(text.to_owned());
        if DynamicMessage::deserialize(message.clone(), value.clone()).is_err() {
            return Err(format!(
                "{field_path}: expected {expected_text}, got {value}"
            ));
        }
        return Ok(value);
    }
    if is_wrapper(message)
        && let Some(inner) = message.get_field_by_name("value")
    {
        return kind_to_json(field_path, &inner.kind(), text);
    }
    let example = message
        .fields()
        .next()
        .map(|field| format!(" such as {field_path}.{}", field.name()))
        .unwrap_or_default();
    Err(format!(
        "{field_path}: a message cannot be set from one value; set its fields with dotted names{example}"
    ))
}

fn is_wrapper(message: &MessageDescriptor) -> bool {
    matches!(
        message.full_name(),
        "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    )
}

/// Parses a decimal integer within `minimum..=maximum`; the error names what was expected.
fn parse_integer(text: &str, minimum: i128, maximum: i128) -> Result<Value, String> {
    let noun = if minimum == 0 {
        "a non-negative integer"
    } else {
        "an integer"
    };
    let Ok(number) = text.parse::<i128>() else {
        return Err(noun.to_owned());
    };
    if number < minimum || number > maximum {
        return Err(format!("{noun} between {minimum} and {maximum}"));
    }
    if let Ok(signed) = i64::try_from(number) {
        return Ok(Value::from(signed));
    }
    u64::try_from(number)
        .map(Value::from)
        .map_err(|_| noun.to_owned())
}

/// Parses a finite decimal number, or the proto3 JSON spellings of the special values.
fn parse_float(text: &str) -> Option<Value> {
    if matches!(text, "NaN" | "Infinity" | "-Infinity") {
        return Some(Value::String(text.to_owned()));
    }
    let number = text
        .parse::<f64>()
        .ok()
        .filter(|number| number.is_finite())?;
    Number::from_f64(number).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rest::fixtures::descriptor_pool;

    fn field(message: &str, name: &str) -> FieldDescriptor {
        descriptor_pool()
            .get_message_by_name(message)
            .and_then(|message| message.get_field_by_name(name))
            .expect("field exists")
    }

    #[test]
    fn converts_text_by_field_kind() {
        let cases: &[(&str, &str, &str, Result<Value, &str>)] = &[
            (
                "crmbet.v1.GetClusterRequest",
                "cluster_id",
                "42",
                Ok(json!(42)),
            ),
            (
                "crmbet.v1.GetClusterRequest",
                "cluster_id",
                "-7",
                Ok(json!(-7)),
            ),
            (
                "crmbet.v1.GetClusterRequest",
                "cluster_id",
                "abc",
                Err("cluster_id: expected an integer, got \"abc\""),
            ),
            (
                "crmbet.v1.GetClusterRequest",
                "cluster_id",
                "9223372036854775808",
                Err(
                    "cluster_id: expected an integer between -9223372036854775808 and 9223372036854775807, got \"9223372036854775808\"",
                ),
            ),
            (
                "crmbet.v1.ListClustersRequest",
                "page_size",
                "100",
                Ok(json!(100)),
            ),
            (
                "crmbet.v1.ListClustersRequest",
                "page_size",
                "3000000000",
                Err(
                    "page_size: expected an integer between -2147483648 and 2147483647, got \"3000000000\"",
                ),
            ),
            (
                "crmbet.v1.ListClustersRequest",
                "page_size",
                "1.5",
                Err("page_size: expected an integer, got \"1.5\""),
            ),
            (
                "crmbet.v1.StartTrainingRequest",
                "seed",
                "18446744073709551615",
                Ok(json!(18_446_744_073_709_551_615_u64)),
            ),
            (
                "crmbet.v1.StartTrainingRequest",
                "seed",
                "-1",
                Err(
                    "seed: expected a non-negative integer between 0 and 18446744073709551615, got \"-1\"",
                ),
            ),
            (
                "crmbet.v1.StartTrainingRequest",
                "activate",
                "true",
                Ok(json!(true)),
            ),
            (
                "crmbet.v1.StartTrainingRequest",
                "activate",
                "false",
                Ok(json!(false)),
            ),
            (
                "crmbet.v1.StartTrainingRequest",
                "activate",
                "yes",
                Err("activate: expected true or false, got \"yes\""),
            ),
            (
                "crmbet.v1.StartTrainingRequest",
                "algorithm",
                "ALGORITHM_KMEANS",
                Ok(json!("ALGORITHM_KMEANS")),
            ),
            (
                "crmbet.v1.StartTrainingRequest",
                "algorithm",
                "2",
                Ok(json!(2)),
            ),
            (
                "crmbet.v1.StartTrainingRequest",
                "algorithm",
                "kmeans",
                Err(
                    "algorithm: expected one of ALGORITHM_UNSPECIFIED, ALGORITHM_AUTO, ALGORITHM_KMEANS, ALGORITHM_DBSCAN, ALGORITHM_HDBSCAN, ALGORITHM_ENSEMBLE, got \"kmeans\"",
                ),
            ),
            (
                "crmbet.v1.SearchUsersRequest",
                "country",
                "GB",
                Ok(json!("GB")),
            ),
            (
                "crmbet.v1.SearchUsersRequest",
                "last_active_after",
                "2024-05-01T12:00:00Z",
                Ok(json!("2024-05-01T12:00:00Z")),
            ),
            (
                "crmbet.v1.SearchUsersRequest",
                "last_active_after",
                "yesterday",
                Err(
                    "last_active_after: expected an RFC 3339 timestamp such as 2024-05-01T12:00:00Z, got \"yesterday\"",
                ),
            ),
            (
                "crmbet.v1.ModelMetrics",
                "silhouette",
                "0.25",
                Ok(json!(0.25)),
            ),
            (
                "crmbet.v1.ModelMetrics",
                "silhouette",
                "NaN",
                Ok(json!("NaN")),
            ),
            (
                "crmbet.v1.ModelMetrics",
                "silhouette",
                "inf",
                Err("silhouette: expected a number, got \"inf\""),
            ),
            (
                "crmbet.v1.CreateCampaignRequest",
                "filter",
                "x",
                Err(
                    "filter: a message cannot be set from one value; set its fields with dotted names such as filter.min_monetary",
                ),
            ),
        ];
        for (message, name, text, expected) in cases {
            let descriptor = field(message, name);
            let converted = text_to_json(name, &descriptor, text);
            let expected = expected.clone().map_err(str::to_owned);
            assert_eq!(converted, expected, "{message}.{name} = {text}");
        }
    }
}
