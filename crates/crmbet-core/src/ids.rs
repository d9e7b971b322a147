//! Typed ids, so a cluster id can never be passed where a campaign id is expected.

use std::fmt;

use crate::Error;

/// Longest user id accepted from an operator.
pub const MAX_PLAYER_ID_LEN: usize = 128;

/// A player's id at the operator: 1..=128 characters of ASCII letters, digits and `_-.:@`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlayerId(String);

impl PlayerId {
    /// Validates `raw` as the request field `field`.
    ///
    /// ```
    /// use crmbet_core::PlayerId;
    /// assert!(PlayerId::parse("user_id", "u-42").is_ok());
    /// assert!(PlayerId::parse("user_id", "").is_err());
    /// ```
    pub fn parse(field: &str, raw: &str) -> Result<Self, Error> {
        if raw.is_empty() {
            return Err(Error::invalid_argument(field, "must not be empty"));
        }
        if raw.len() > MAX_PLAYER_ID_LEN {
            return Err(Error::invalid_argument(
                field,
                format!(
                    "must be at most {MAX_PLAYER_ID_LEN} characters, got {}",
                    raw.len()
                ),
            ));
        }
        if let Some(bad) = raw.chars().find(|character| !is_player_id_char(*character)) {
            return Err(Error::invalid_argument(
                field,
                format!("may contain only letters, digits and _-.:@, got {bad:?}"),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as the operator wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `character` may appear in a player id (and so in an id prefix filter).
pub fn is_player_id_char(character: char) -> bool {
    character.is_ascii_alphanumeric() || matches!(character, '_' | '-' | '.' | ':' | '@')
}

impl fmt::Display for PlayerId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl $name {
            /// Validates a request field: ids are positive.
            pub fn parse(field: &str, raw: i64) -> Result<Self, Error> {
                if raw <= 0 {
                    return Err(Error::invalid_argument(
                        field,
                        format!("must be a positive {} id, got {raw}", $kind),
                    ));
                }
                Ok(Self(raw))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(formatter, "{}", self.0)
            }
        }
    };
}

numeric_id!(
    /// A cluster of a segmentation model.
    ClusterId,
    "cluster"
);
numeric_id!(
    /// A trained segmentation model.
    ModelId,
    "model"
);
numeric_id!(
    /// A marketing campaign.
    CampaignId,
    "campaign"
);
numeric_id!(
    /// A run of the ETL.
    EtlRunId,
    "etl run"
);
numeric_id!(
    /// A training run.
    TrainingRunId,
    "training run"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn player_id_rules() {
        let long = "x".repeat(MAX_PLAYER_ID_LEN + 1);
        let cases: &[(&str, bool)] = &[
            ("u1", true),
            ("player.42@brand:eu-1", true),
            ("", false),
            ("has space", false),
            ("semi;colon", false),
            ("ünicode", false),
            (long.as_str(), false),
        ];
        for (raw, valid) in cases {
            assert_eq!(PlayerId::parse("user_id", raw).is_ok(), *valid, "{raw:?}");
        }
    }

    #[test]
    fn numeric_ids_are_positive() {
        assert!(ClusterId::parse("cluster_id", 1).is_ok());
        let error = ClusterId::parse("cluster_id", 0).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cluster_id: must be a positive cluster id, got 0"
        );
        assert!(CampaignId::parse("campaign_id", -5).is_err());
    }
}
