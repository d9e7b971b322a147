//! Route classes and their hourly budgets: `CRMBET_RATE_LIMIT_CLASSES`, parsed here and
//! nowhere else.
//!
//! Every RPC belongs to exactly one class (the server's permission table says which). A
//! class listed in the setting has budgets of its own, so a flood of it neither starves
//! the others nor is limited by them; the classes not listed share one budget of
//! `CRMBET_RATE_LIMIT_PER_HOUR` and `CRMBET_RATE_LIMIT_PER_PRINCIPAL_PER_HOUR`, except
//! `segment` and `events`, which have [`SEGMENT_BUDGET`] and [`EVENTS_BUDGET`] unless the
//! setting lists them.
//!
//! ```
//! use crmbet_core::rate_limit_classes::{RateLimitClasses, RouteClass};
//!
//! let classes: RateLimitClasses = "segment=100000/1000000, auth=60".parse().unwrap();
//! let auth = classes.budget(RouteClass::Auth).unwrap();
//! assert_eq!((auth.per_client_ip, auth.per_principal), (60, None));
//! assert!(classes.budget(RouteClass::Read).is_none());
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// The setting's environment variable, for error messages.
pub const SETTING: &str = "CRMBET_RATE_LIMIT_CLASSES";

/// A kind of call with budgets of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteClass {
    /// AuthService: login, refresh, logout, who-am-i. Guessing passwords must stay costly.
    Auth,
    /// GetUserSegment, the hot read internal services make at bet time.
    Segment,
    /// EventService: live transactions from the operator's platform, in batches.
    Events,
    /// The Smartico CRM's webhook callbacks.
    Webhook,
    /// Other calls that change state.
    Write,
    /// Everything else, including paths that match no RPC.
    Read,
}

impl RouteClass {
    /// Every class, in the order error messages list them.
    pub const ALL: [Self; 6] = [
        Self::Auth,
        Self::Segment,
        Self::Events,
        Self::Webhook,
        Self::Write,
        Self::Read,
    ];

    /// The name used in the setting, in Redis keys and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Segment => "segment",
            Self::Events => "events",
            Self::Webhook => "webhook",
            Self::Write => "write",
            Self::Read => "read",
        }
    }
}

impl fmt::Display for RouteClass {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

impl FromStr for RouteClass {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|class| class.name() == text)
            .ok_or_else(|| format!("unknown class {text:?}; the classes are {}", class_list()))
    }
}

fn class_list() -> String {
    RouteClass::ALL.map(RouteClass::name).join(", ")
}

/// Requests allowed per hour for one class, as the setting gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassBudget {
    /// Requests per client IP.
    pub per_client_ip: u32,
    /// Requests per authenticated principal; `None` keeps the default.
    pub per_principal: Option<u32>,
}

/// The budget of `segment` when the setting does not list it: 3,600,000 requests an hour
/// (1,000 a second sustained) per client IP and per principal.
///
/// Why: GetUserSegment is what an internal service (role `service`) calls at bet time, one
/// lookup per bet, typically under one service account from a few addresses; the general
/// 1,000 an hour would cut it off within minutes. A cached segment read costs the server
/// tens of microseconds of one core (`crmbet bench serve` serves tens of thousands a
/// second), so even a leaked token spending the whole budget uses a few percent of one
/// instance, while every other class keeps the tight general budget.
pub const SEGMENT_BUDGET: ClassBudget = ClassBudget {
    per_client_ip: 3_600_000,
    per_principal: Some(3_600_000),
};

/// The budget of `events` when the setting does not list it: 3,600,000 requests an hour per
/// client IP and per principal.
///
/// Why: the operator's platform sends every bet, win and deposit as it happens, from a few
/// addresses under one service account; a request carries a batch (or a whole stream), so
/// a second's worth of play is a handful of requests, yet the general 1,000 an hour would
/// stop live play within minutes.
pub const EVENTS_BUDGET: ClassBudget = ClassBudget {
    per_client_ip: 3_600_000,
    per_principal: Some(3_600_000),
};

/// The per-class overrides of `CRMBET_RATE_LIMIT_CLASSES`:
/// `class=per_ip[/per_principal]`, comma-separated, e.g. `segment=100000/1000000,auth=60`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct RateLimitClasses {
    budgets: BTreeMap<RouteClass, ClassBudget>,
}

impl RateLimitClasses {
    /// The budget of its own `class` has: the setting's entry, or [`SEGMENT_BUDGET`] and
    /// [`EVENTS_BUDGET`] for an unlisted `segment` and `events`; `None` for a class that
    /// shares the general budget.
    pub fn budget(&self, class: RouteClass) -> Option<ClassBudget> {
        let built_in = match class {
            RouteClass::Segment => Some(SEGMENT_BUDGET),
            RouteClass::Events => Some(EVENTS_BUDGET),
            _ => None,
        };
        self.budgets.get(&class).copied().or(built_in)
    }
}

impl FromStr for RateLimitClasses {
    type Err = String;

    /// Parses the setting; the error says what is wrong and what is expected.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut budgets = BTreeMap::new();
        let entries = text
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty());
        for entry in entries {
            let (class, budget) = parse_entry(entry)?;
            if budgets.insert(class, budget).is_some() {
                return Err(format!("class {class} is listed twice"));
            }
        }
        Ok(Self { budgets })
    }
}

impl TryFrom<String> for RateLimitClasses {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

/// One `class=per_ip[/per_principal]` entry.
fn parse_entry(entry: &str) -> Result<(RouteClass, ClassBudget), String> {
    let expected = || {
        format!(
            "expected class=per_ip[/per_principal] (requests per hour) with a class among {}, \
             got {entry:?}",
            class_list()
        )
    };
    let (class, limits) = entry.split_once('=').ok_or_else(expected)?;
    let class: RouteClass = class.trim().parse()?;
    let (per_client_ip, per_principal) = match limits.split_once('/') {
        Some((per_client_ip, per_principal)) => (per_client_ip, Some(per_principal)),
        None => (limits, None),
    };
    let per_client_ip = parse_limit(per_client_ip).ok_or_else(expected)?;
    let per_principal = match per_principal {
        Some(text) => Some(parse_limit(text).ok_or_else(expected)?),
        None => None,
    };
    if per_client_ip == 0 || per_principal == Some(0) {
        return Err(format!(
            "class {class} has a limit of 0, which would refuse every call; give at least 1 \
             request per hour"
        ));
    }
    Ok((
        class,
        ClassBudget {
            per_client_ip,
            per_principal,
        },
    ))
}

fn parse_limit(text: &str) -> Option<u32> {
    let text = text.trim();
    // `parse` would accept a leading `+`; the setting is plain digits.
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_has_its_own_budget_unless_listed() {
        let unset = RateLimitClasses::default();
        assert_eq!(unset.budget(RouteClass::Segment), Some(SEGMENT_BUDGET));
        assert_eq!(unset.budget(RouteClass::Events), Some(EVENTS_BUDGET));
        for class in [
            RouteClass::Auth,
            RouteClass::Webhook,
            RouteClass::Write,
            RouteClass::Read,
        ] {
            assert_eq!(unset.budget(class), None, "{class}");
        }
        let listed: RateLimitClasses = "segment=5".parse().unwrap();
        assert_eq!(
            listed.budget(RouteClass::Segment),
            Some(ClassBudget {
                per_client_ip: 5,
                per_principal: None
            })
        );
    }

    #[test]
    fn parses_overrides_with_and_without_a_principal_limit() {
        let classes: RateLimitClasses = " segment=100000/1000000 , auth=60,".parse().unwrap();
        assert_eq!(
            classes.budget(RouteClass::Segment),
            Some(ClassBudget {
                per_client_ip: 100_000,
                per_principal: Some(1_000_000)
            })
        );
        assert_eq!(
            classes.budget(RouteClass::Auth),
            Some(ClassBudget {
                per_client_ip: 60,
                per_principal: None
            })
        );
        assert_eq!(classes.budget(RouteClass::Write), None);
        assert_eq!(
            "".parse::<RateLimitClasses>().unwrap(),
            RateLimitClasses::default()
        );
    }

    #[test]
    fn rejects_unknown_classes_zero_and_malformed_entries() {
        let cases = [
            ("admin=5", "unknown class \"admin\""),
            ("auth=0", "limit of 0"),
            ("auth=5/0", "limit of 0"),
            ("auth", "expected class=per_ip"),
            ("auth=", "expected class=per_ip"),
            ("auth=lots", "expected class=per_ip"),
            ("auth=-1", "expected class=per_ip"),
            ("auth=5/", "expected class=per_ip"),
            ("auth=1/2/3", "expected class=per_ip"),
            ("auth=99999999999", "expected class=per_ip"),
            ("auth=5,auth=6", "listed twice"),
        ];
        for (text, expected) in cases {
            let error = text.parse::<RateLimitClasses>().unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
        let error = "admin=5".parse::<RateLimitClasses>().unwrap_err();
        assert!(
            error.contains("auth, segment, events, webhook, write, read"),
            "{error}"
        );
    }
}
