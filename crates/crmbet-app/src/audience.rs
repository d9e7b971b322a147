//! Who a launch reaches: the members of the target clusters, less every player a
//! responsible-gambling rule or the frequency cap protects, narrowed by the target filter,
//! then split into treatment and control by a seeded hash.
//!
//! Invariant: a self-excluded, blocked, opted-out or capped player is never in the
//! returned audience, whatever the filter says. This module is pure (no I/O).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use crmbet_core::CampaignId;
use crmbet_store::AudienceCandidate;
use crmbet_store::entity::player_restrictions;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Narrows a campaign's clusters to the players that match every set bound.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TargetFilter {
    pub min_monetary: Option<f64>,
    pub max_monetary: Option<f64>,
    /// Only players inactive for at least this many days.
    pub min_recency_days: Option<u32>,
    /// Only players inactive for at most this many days.
    pub max_recency_days: Option<u32>,
    /// ISO 3166-1 alpha-2 codes; empty for all countries.
    pub countries: Vec<String>,
}

/// Players of the target clusters a launch left out, by reason; a player with several
/// reasons counts under the first in this order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExclusionCounts {
    pub self_excluded: u64,
    pub blocked: u64,
    pub opted_out: u64,
    pub frequency_capped: u64,
    pub filtered_out: u64,
}

/// Why a player is left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exclusion {
    SelfExcluded,
    Blocked,
    OptedOut,
    FrequencyCapped,
    FilteredOut,
}

/// The frequency cap: at most `max_campaigns` per player within the window the contacts
/// were counted over; 0 for no cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrequencyCap {
    pub max_campaigns: u32,
}

/// The rules a launch applies to the candidates.
#[derive(Debug)]
pub struct AudienceRules<'a> {
    pub filter: &'a TargetFilter,
    pub restrictions: &'a HashMap<String, player_restrictions::Model>,
    /// Campaigns each player received within the cap's window.
    pub recent_contacts: &'a HashMap<String, i64>,
    pub cap: FrequencyCap,
    pub now: DateTime<Utc>,
}

/// A player the launch may contact (or hold back), with their cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eligible {
    pub user_id: String,
    pub cluster_id: i64,
}

/// The candidates that pass every rule, and the count of each reason for the rest.
pub fn eligible_players(
    candidates: Vec<AudienceCandidate>,
    rules: &AudienceRules<'_>,
) -> (Vec<Eligible>, ExclusionCounts) {
    let mut counts = ExclusionCounts::default();
    let mut eligible = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        match exclusion(&candidate, rules) {
            None => eligible.push(Eligible {
                user_id: candidate.user_id,
                cluster_id: candidate.cluster_id,
            }),
            Some(Exclusion::SelfExcluded) => counts.self_excluded += 1,
            Some(Exclusion::Blocked) => counts.blocked += 1,
            Some(Exclusion::OptedOut) => counts.opted_out += 1,
            Some(Exclusion::FrequencyCapped) => counts.frequency_capped += 1,
            Some(Exclusion::FilteredOut) => counts.filtered_out += 1,
        }
    }
    (eligible, counts)
}

fn exclusion(candidate: &AudienceCandidate, rules: &AudienceRules<'_>) -> Option<Exclusion> {
    if let Some(restriction) = rules.restrictions.get(&candidate.user_id) {
        if restriction.self_excluded {
            return Some(Exclusion::SelfExcluded);
        }
        if restriction.blocked {
            return Some(Exclusion::Blocked);
        }
        if restriction.marketing_opt_out {
            return Some(Exclusion::OptedOut);
        }
    }
    let contacts = rules
        .recent_contacts
        .get(&candidate.user_id)
        .copied()
        .unwrap_or(0);
    if rules.cap.max_campaigns > 0 && contacts >= i64::from(rules.cap.max_campaigns) {
        return Some(Exclusion::FrequencyCapped);
    }
    if !matches_filter(candidate, rules.filter, rules.now) {
        return Some(Exclusion::FilteredOut);
    }
    None
}

fn matches_filter(
    candidate: &AudienceCandidate,
    filter: &TargetFilter,
    now: DateTime<Utc>,
) -> bool {
    let monetary = candidate.monetary.unwrap_or(0.0);
    if filter
        .min_monetary
        .is_some_and(|minimum| monetary < minimum)
    {
        return false;
    }
    if filter
        .max_monetary
        .is_some_and(|maximum| monetary > maximum)
    {
        return false;
    }
    if filter.min_recency_days.is_some() || filter.max_recency_days.is_some() {
        let Some(last_active_at) = candidate.last_active_at else {
            return false;
        };
        let recency_days = (now - last_active_at).num_days();
        if filter
            .min_recency_days
            .is_some_and(|minimum| recency_days < i64::from(minimum))
        {
            return false;
        }
        if filter
            .max_recency_days
            .is_some_and(|maximum| recency_days > i64::from(maximum))
        {
            return false;
        }
    }
    if !filter.countries.is_empty() {
        let Some(country) = &candidate.country else {
            return false;
        };
        if !filter
            .countries
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(country))
        {
            return false;
        }
    }
    true
}

/// Whether the player is in the campaign's control group: the first 8 bytes of
/// SHA-256(`seed:campaign:player`) as a fraction of 2^64, below `holdout_share`. Stable for
/// a campaign and player, independent of the rest of the audience.
pub fn in_control_group(
    seed: &str,
    campaign_id: CampaignId,
    user_id: &str,
    holdout_share: f64,
) -> bool {
    let digest = Sha256::digest(format!("{seed}:{campaign_id}:{user_id}").as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    let fraction = u64::from_be_bytes(head) as f64 / 2f64.powi(64);
    fraction < holdout_share
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn candidate(user_id: &str, monetary: f64, days_idle: i64, country: &str) -> AudienceCandidate {
        AudienceCandidate {
            user_id: user_id.to_owned(),
            cluster_id: 1,
            country: Some(country.to_owned()),
            last_active_at: Some(Utc::now() - Duration::days(days_idle)),
            monetary: Some(monetary),
        }
    }

    fn restriction(user_id: &str, flags: (bool, bool, bool)) -> player_restrictions::Model {
        player_restrictions::Model {
            user_id: user_id.to_owned(),
            self_excluded: flags.0,
            blocked: flags.1,
            marketing_opt_out: flags.2,
            source: "api".to_owned(),
            updated_by: None,
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn restricted_and_capped_players_are_never_eligible_whatever_the_filter() {
        let restrictions: HashMap<String, player_restrictions::Model> = [
            restriction("self", (true, false, false)),
            restriction("blocked", (false, true, false)),
            restriction("opted", (false, false, true)),
            restriction("all", (true, true, true)),
            restriction("cleared", (false, false, false)),
        ]
        .into_iter()
        .map(|row| (row.user_id.clone(), row))
        .collect();
        let recent_contacts = HashMap::from([("capped".to_owned(), 3), ("once".to_owned(), 1)]);
        let filter = TargetFilter {
            min_monetary: Some(10.0),
            countries: vec!["GB".to_owned()],
            ..TargetFilter::default()
        };
        let rules = AudienceRules {
            filter: &filter,
            restrictions: &restrictions,
            recent_contacts: &recent_contacts,
            cap: FrequencyCap { max_campaigns: 3 },
            now: Utc::now(),
        };
        let candidates = [
            ("self", 50.0, "GB"),
            ("blocked", 50.0, "GB"),
            ("opted", 50.0, "GB"),
            ("all", 50.0, "GB"),
            ("capped", 50.0, "GB"),
            ("cleared", 50.0, "gb"),
            ("once", 50.0, "GB"),
            ("poor", 5.0, "GB"),
            ("abroad", 50.0, "DE"),
        ]
        .into_iter()
        .map(|(user, monetary, country)| candidate(user, monetary, 3, country))
        .collect();
        let (eligible, counts) = eligible_players(candidates, &rules);
        let users: Vec<&str> = eligible
            .iter()
            .map(|player| player.user_id.as_str())
            .collect();
        assert_eq!(users, ["cleared", "once"]);
        assert_eq!(
            counts,
            ExclusionCounts {
                self_excluded: 2,
                blocked: 1,
                opted_out: 1,
                frequency_capped: 1,
                filtered_out: 2,
            }
        );
    }

    #[test]
    fn recency_bounds_use_days_since_last_activity() {
        let filter = TargetFilter {
            min_recency_days: Some(7),
            max_recency_days: Some(30),
            ..TargetFilter::default()
        };
        let now = Utc::now();
        for (days_idle, expected) in [(3, false), (7, true), (30, true), (31, false)] {
            let player = AudienceCandidate {
                last_active_at: Some(now - Duration::days(days_idle)),
                ..candidate("p", 0.0, days_idle, "GB")
            };
            assert_eq!(
                matches_filter(&player, &filter, now),
                expected,
                "{days_idle}"
            );
        }
    }

    #[test]
    fn holdout_is_stable_and_near_its_share() {
        let players: Vec<String> = (0..20_000).map(|index| format!("p-{index}")).collect();
        let control = players
            .iter()
            .filter(|player| in_control_group("seed", CampaignId(7), player, 0.1))
            .count();
        assert!((1_800..2_200).contains(&control), "{control}");
        for player in players.iter().take(100) {
            assert_eq!(
                in_control_group("seed", CampaignId(7), player, 0.1),
                in_control_group("seed", CampaignId(7), player, 0.1)
            );
        }
        let other_campaign = players
            .iter()
            .filter(|player| {
                in_control_group("seed", CampaignId(7), player, 0.1)
                    != in_control_group("seed", CampaignId(8), player, 0.1)
            })
            .count();
        assert!(other_campaign > 1_000, "campaigns draw their own groups");
    }
}
