//! Comparing two computations of the same players' features (batch against live, one
//! engine against another): text, counts and scores must be equal, floats close.

use serde::Serialize;
use serde_json::Value;

use crate::features::PlayerFeatures;

/// The largest relative difference of a float feature between `expected` and `actual`
/// (same players in the same order), or where they differ otherwise.
pub fn largest_feature_difference(
    expected: &[PlayerFeatures],
    actual: &[PlayerFeatures],
) -> Result<f64, String> {
    largest_serialized_difference(expected, actual)
}

/// [`largest_feature_difference`] for any two lists of the same serializable shape
/// (players' aggregates, say).
pub fn largest_serialized_difference<T: Serialize>(
    expected: &[T],
    actual: &[T],
) -> Result<f64, String> {
    let expected = serde_json::to_value(expected).map_err(|error| error.to_string())?;
    let actual = serde_json::to_value(actual).map_err(|error| error.to_string())?;
    largest_difference(&expected, &actual, "players")
}

/// Walks two JSON documents in step: text, booleans, nulls (NaN serialises as null),
/// integers and shapes must be equal; floats may differ by summation order, and the
/// largest difference relative to `max(|a|, |b|, 1)` is returned.
fn largest_difference(expected: &Value, actual: &Value, at: &str) -> Result<f64, String> {
    match (expected, actual) {
        (Value::Array(expected), Value::Array(actual)) => {
            if expected.len() != actual.len() {
                return Err(format!(
                    "{at}: {} against {} entries",
                    expected.len(),
                    actual.len()
                ));
            }
            let mut largest = 0.0_f64;
            for (index, (expected, actual)) in expected.iter().zip(actual).enumerate() {
                let at = match expected.get("user_id") {
                    Some(user) => format!("{at}[{user}]"),
                    None => format!("{at}[{index}]"),
                };
                largest = largest.max(largest_difference(expected, actual, &at)?);
            }
            Ok(largest)
        }
        (Value::Object(expected), Value::Object(actual)) => {
            if expected.len() != actual.len() {
                return Err(format!(
                    "{at}: {} against {} fields",
                    expected.len(),
                    actual.len()
                ));
            }
            let mut largest = 0.0_f64;
            for (name, expected_value) in expected {
                let actual_value = actual
                    .get(name)
                    .ok_or_else(|| format!("{at}: {name} is missing"))?;
                largest = largest.max(largest_difference(
                    expected_value,
                    actual_value,
                    &format!("{at}.{name}"),
                )?);
            }
            Ok(largest)
        }
        (Value::Number(expected_number), Value::Number(actual_number))
            if expected_number.is_f64() || actual_number.is_f64() =>
        {
            match (expected_number.as_f64(), actual_number.as_f64()) {
                (Some(expected_float), Some(actual_float)) => {
                    let scale = expected_float.abs().max(actual_float.abs()).max(1.0);
                    Ok((expected_float - actual_float).abs() / scale)
                }
                _ => Err(format!("{at}: {expected_number} against {actual_number}")),
            }
        }
        _ if expected == actual => Ok(0.0),
        _ => Err(format!("{at}: {expected} against {actual}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::largest_difference;

    #[test]
    fn floats_may_differ_a_little_everything_else_must_be_equal() {
        let expected = json!([{"user_id": "p1", "bet_count": 3, "ngr": 30.0, "country": null}]);
        let close =
            json!([{"user_id": "p1", "bet_count": 3, "ngr": 30.000_000_03, "country": null}]);
        let difference = largest_difference(&expected, &close, "players").expect("same shape");
        assert!(difference > 0.0 && difference < 1e-9, "{difference}");

        for different in [
            json!([{"user_id": "p2", "bet_count": 3, "ngr": 30.0, "country": null}]),
            json!([{"user_id": "p1", "bet_count": 4, "ngr": 30.0, "country": null}]),
            json!([{"user_id": "p1", "bet_count": 3, "ngr": 30.0, "country": "FI"}]),
            json!([{"user_id": "p1", "bet_count": 3, "ngr": 30.0}]),
            json!([]),
        ] {
            assert!(
                largest_difference(&expected, &different, "players").is_err(),
                "{different}"
            );
        }
    }
}
