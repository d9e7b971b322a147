//! Conversions between stored values and protobuf types at the API edge.

use chrono::{DateTime, Utc};
use crmbet_core::Error;
use crmbet_core::money::format_amount;
use crmbet_proto::v1::{CampaignType, GameType, Money};

/// The reporting currency of every stored amount.
pub const REPORTING_CURRENCY: &str = "EUR";

/// A protobuf timestamp for a stored instant.
pub fn timestamp(instant: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: instant.timestamp(),
        nanos: i32::try_from(instant.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A stored instant for a request's timestamp; `field` names it in errors.
pub fn instant(field: &str, timestamp: &prost_types::Timestamp) -> Result<DateTime<Utc>, Error> {
    let nanos = u32::try_from(timestamp.nanos).ok();
    nanos
        .and_then(|nanos| DateTime::from_timestamp(timestamp.seconds, nanos))
        .ok_or_else(|| Error::invalid_argument(field, "is not a valid timestamp"))
}

/// The role as the contracts spell it.
pub fn role(role: crmbet_core::Role) -> crmbet_proto::v1::Role {
    match role {
        crmbet_core::Role::Admin => crmbet_proto::v1::Role::Admin,
        crmbet_core::Role::Analyst => crmbet_proto::v1::Role::Analyst,
        crmbet_core::Role::Marketer => crmbet_proto::v1::Role::Marketer,
        crmbet_core::Role::Service => crmbet_proto::v1::Role::Service,
    }
}

/// Money in the reporting currency.
pub fn money(amount: f64) -> Option<Money> {
    Some(Money {
        currency_code: REPORTING_CURRENCY.to_owned(),
        amount: format_amount(amount),
    })
}

/// The enum for a stored campaign type such as `reload_bonus`.
pub fn campaign_type(stored: &str) -> CampaignType {
    let name = format!("CAMPAIGN_TYPE_{}", stored.to_ascii_uppercase());
    CampaignType::from_str_name(&name).unwrap_or(CampaignType::Unspecified)
}

/// The enum for a stored game type such as `live_casino`.
pub fn game_type(stored: &str) -> GameType {
    let name = format!("GAME_TYPE_{}", stored.to_ascii_uppercase());
    GameType::from_str_name(&name).unwrap_or(GameType::Unspecified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_map_to_enums() {
        assert_eq!(campaign_type("vip_host"), CampaignType::VipHost);
        assert_eq!(campaign_type("nonsense"), CampaignType::Unspecified);
        assert_eq!(game_type("live_casino"), GameType::LiveCasino);
    }

    #[test]
    fn timestamps_round_trip() {
        let now = Utc::now();
        assert_eq!(instant("t", &timestamp(now)).unwrap(), now);
        let bad = prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert!(instant("t", &bad).is_err());
    }
}
