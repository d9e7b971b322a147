//! Where players come from and how they reach the operator: countries, currencies and
//! channels.

/// Countries players live in (ISO 3166-1 alpha-2) and their relative weights.
pub(super) const COUNTRIES: [(&str, f64); 12] = [
    ("DE", 18.0),
    ("GB", 14.0),
    ("SE", 10.0),
    ("FI", 10.0),
    ("NO", 8.0),
    ("NL", 8.0),
    ("CA", 8.0),
    ("BR", 7.0),
    ("IE", 5.0),
    ("AT", 5.0),
    ("MT", 4.0),
    ("EE", 3.0),
];

/// The reporting currency, used by most players.
pub(super) const REPORTING_CURRENCY: &str = "EUR";

/// Share of players in a country with its own currency who pay in it.
pub(super) const LOCAL_CURRENCY_SHARE: f64 = 0.3;

/// The local currency (ISO 4217) of `country`, where it is not the euro.
pub(super) fn local_currency(country: &str) -> Option<&'static str> {
    match country {
        "GB" => Some("GBP"),
        "SE" => Some("SEK"),
        "NO" => Some("NOK"),
        "CA" => Some("CAD"),
        "BR" => Some("BRL"),
        _ => None,
    }
}

/// The channels of the contract, in the order of an archetype's channel weights.
pub(super) const CHANNELS: [&str; 3] = ["web", "mobile", "app"];

/// Share of sessions on the player's preferred channel; the rest pick one at random.
pub(super) const PREFERRED_CHANNEL_SHARE: f64 = 0.85;

/// Share of rows whose channel is missing.
pub(super) const MISSING_CHANNEL_SHARE: f64 = 0.01;

/// Share of rows whose country is missing.
pub(super) const MISSING_COUNTRY_SHARE: f64 = 0.005;
