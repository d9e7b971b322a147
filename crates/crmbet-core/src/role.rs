//! The four roles an account can have.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// What an account may do; the server's permission table maps each role to RPCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, including model activation and campaigns.
    Admin,
    /// Reads, and the training workflow (start runs, activate models).
    Analyst,
    /// Reads of clusters and players, and campaigns.
    Marketer,
    /// Internal services (risk, bonus engine, game platform): segments at bet time, cluster
    /// reads, campaign launches.
    Service,
}

impl Role {
    /// Every role, for tables and tests.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Analyst, Role::Marketer, Role::Service];

    /// The stored and printed word: `admin`, `analyst`, `marketer` or `service`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Analyst => "analyst",
            Self::Marketer => "marketer",
            Self::Service => "service",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;

    fn from_str(word: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == word)
            .ok_or_else(|| {
                Error::invalid_argument(
                    "role",
                    format!("must be one of admin, analyst, marketer, service; got {word:?}"),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_unknown_words_are_refused() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().ok(), Some(role));
        }
        assert!("root".parse::<Role>().is_err());
        assert!("Admin".parse::<Role>().is_err());
    }
}
