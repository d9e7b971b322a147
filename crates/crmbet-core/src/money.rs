//! Money as decimal strings at the API edge.
//!
//! Amounts are stored as `f64` aggregates computed by the ETL; at the edge they become
//! decimal strings rounded to the cent, and decimal filters are parsed strictly.

use crate::Error;

/// Formats an amount as a decimal string with two places, e.g. `1234.50`.
///
/// ```
/// assert_eq!(crmbet_core::money::format_amount(1234.5), "1234.50");
/// assert_eq!(crmbet_core::money::format_amount(-0.004), "0.00");
/// ```
pub fn format_amount(amount: f64) -> String {
    if !amount.is_finite() {
        return "0.00".to_owned();
    }
    let cents = (amount * 100.0).round();
    let text = format!("{:.2}", cents / 100.0);
    if text == "-0.00" {
        "0.00".to_owned()
    } else {
        text
    }
}

/// Parses a decimal amount filter such as `"100"`, `"99.5"` or `"-3.25"`; empty means none.
///
/// ```
/// use crmbet_core::money::parse_amount;
/// assert_eq!(parse_amount("min_monetary", "99.50").unwrap(), Some(99.5));
/// assert_eq!(parse_amount("min_monetary", "").unwrap(), None);
/// assert!(parse_amount("min_monetary", "1e9").is_err());
/// ```
pub fn parse_amount(field: &str, raw: &str) -> Result<Option<f64>, Error> {
    if raw.is_empty() {
        return Ok(None);
    }
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let well_formed = !whole.is_empty()
        && whole.len() <= 15
        && fraction.len() <= 6
        && whole.bytes().all(|byte| byte.is_ascii_digit())
        && fraction.bytes().all(|byte| byte.is_ascii_digit())
        && !(digits.contains('.') && fraction.is_empty());
    if !well_formed {
        return Err(Error::invalid_argument(
            field,
            format!("must be a decimal amount such as \"100\" or \"99.50\", got {raw:?}"),
        ));
    }
    raw.parse::<f64>().map(Some).map_err(|_| {
        Error::invalid_argument(field, format!("must be a decimal amount, got {raw:?}"))
    })
}
