//! Cluster profiles and the names, descriptions and campaigns a marketer reads.
//!
//! A cluster's profile compares its raw features with the whole population (mean, population
//! mean, z-score of the difference in population standard deviations). Names come from rules
//! over *relative* traits, never over absolute amounts, so they hold for any operator's
//! currency and stake levels:
//!
//! | trait | measure |
//! |---|---|
//! | dominant game | the game with the largest mean share of the cluster's bets, and that share |
//! | stakes | median `avg_ticket` of the cluster over the population median |
//! | night, weekend | mean `night_share` / `weekend_share` of the cluster, and over the population's |
//! | lapsed | median `recency_days` over the population's, and the cluster's median |
//! | bonus | mean `bonus_share` over the population's |
//!
//! | name | rule (all must hold) | campaign |
//! |---|---|---|
//! | VIP · High Roller | stakes ≥ 50× (the whale tail, [`crate::tail`]) | VIP host |
//! | High Roller Crash | crash ≥ 40% of bets, stakes ≥ 2× | VIP host |
//! | VIP Live Dealer | live casino ≥ 40% of bets, stakes ≥ 2× | VIP host |
//! | Night Owl Casino | night share ≥ 40% and ≥ 2× the population's, casino games ≥ 50% of bets | cashback |
//! | Weekend Warrior | weekend share ≥ 50% and ≥ 1.5× the population's | free bets |
//! | Sports Betting Pro | sports ≥ 50% of bets, stakes ≥ 1.5× | free bets |
//! | Casual Slots | slots ≥ 50% of bets, stakes ≤ 1× | reload bonus |
//! | Table Games Regulars | table games ≥ 40% of bets | cashback |
//! | Bonus Hunters | bonus share ≥ 2× the population's and ≥ 20% of funding | cashback |
//! | Lapsed … | median recency ≥ 2× the population's and ≥ 60 days | reactivation |
//! | … Regulars (by dominant game) | the dominant game has ≥ 40% of bets | by game |
//! | fallback | the three traits with the largest z-scores, e.g. "Crash · Night · High Stakes" | by traits |
//!
//! Each cluster lists the names whose rules it meets, in the table's order. Names are
//! unique: when several clusters want the same name, the one with the strongest defining trait
//! (the share or ratio in its rule) keeps it and the others move on to their next name, and a
//! cluster left with none takes the fallback. If the fallback repeats a name, the later cluster
//! gets the trait that sets it apart most from the other one appended.

use ndarray::ArrayView1;
use serde::{Deserialize, Serialize};

use crate::matrix::FeatureTable;

/// The campaign a cluster's profile suggests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignType {
    /// Money back on losses: keeps value-seeking or steady players.
    Cashback,
    /// A bonus on the next deposit.
    ReloadBonus,
    /// A personal host for the highest-value players.
    VipHost,
    /// Free bets on sports.
    FreeBets,
    /// Win back players who stopped playing.
    Reactivation,
    /// Onboarding offers for new players.
    Welcome,
}

/// One feature of a cluster against the population, in raw-feature units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureProfile {
    /// The raw feature's name.
    pub feature: String,
    /// Mean over the cluster's players.
    pub mean: f64,
    /// Mean over every player.
    pub population_mean: f64,
    /// `(mean − population_mean) / population standard deviation` (0 for a constant feature).
    pub z_score: f64,
}

/// A cluster as a marketer sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterSummary {
    /// The cluster's label, `0..k`.
    pub label: usize,
    /// A unique name such as "High Roller Crash".
    pub name: String,
    /// One sentence on what sets the cluster apart, with numbers.
    pub description: String,
    /// The campaign its profile suggests.
    pub suggested_campaign: CampaignType,
    /// Players in the cluster.
    pub size: usize,
    /// Share of all players (outliers included in the denominator).
    pub share: f64,
    /// Every raw feature against the population, largest absolute z-score first.
    pub profile: Vec<FeatureProfile>,
}

/// Game share columns and how a name or a sentence calls the game.
const GAMES: &[(&str, &str, &str)] = &[
    ("share_crash", "Crash", "crash games"),
    ("share_slots", "Slots", "slots"),
    ("share_live_casino", "Live Casino", "live casino"),
    ("share_sports", "Sports", "sports"),
    ("share_table", "Table Games", "table games"),
];

/// The relative traits of one cluster that the naming rules read.
#[derive(Debug, Clone, PartialEq)]
struct Traits {
    /// Index into [`GAMES`] of the dominant game, and its mean share (None without shares).
    dominant: Option<(usize, f64)>,
    /// Mean share of each game in [`GAMES`] (NaN when the column is absent).
    shares: Vec<f64>,
    /// Cluster median `avg_ticket` over the population median (NaN when absent).
    stakes: f64,
    /// Cluster mean `avg_ticket`.
    ticket: f64,
    /// Mean night share and its ratio to the population's.
    night: (f64, f64),
    /// Mean weekend share and its ratio to the population's.
    weekend: (f64, f64),
    /// Median recency days and its ratio to the population's.
    recency: (f64, f64),
    /// Mean bonus share and its ratio to the population's.
    bonus: (f64, f64),
}

/// A name a cluster qualifies for, how strongly, and what it suggests.
#[derive(Debug, Clone, PartialEq)]
struct Proposal {
    name: String,
    strength: f64,
    campaign: CampaignType,
}

/// Profiles and names every cluster `0..clusters` of a labelling of the table's players.
pub(crate) fn summarize(
    table: &FeatureTable,
    labels: &[Option<usize>],
    clusters: usize,
) -> Vec<ClusterSummary> {
    let players = table.players().max(1);
    let members: Vec<Vec<usize>> = (0..clusters)
        .map(|cluster| {
            labels
                .iter()
                .enumerate()
                .filter(|(_, label)| **label == Some(cluster))
                .map(|(row, _)| row)
                .collect()
        })
        .collect();
    let everyone: Vec<usize> = (0..table.players()).collect();
    let population = traits(table, &everyone, None);
    // The population's mean and spread of each column, once for every cluster.
    let population_stats: Vec<(f64, f64)> = (0..table.columns.len())
        .map(|index| mean_and_std(table.values.column(index).iter().copied()))
        .collect();
    let profiles: Vec<Vec<FeatureProfile>> = members
        .iter()
        .map(|rows| profile(table, rows, &population_stats))
        .collect();
    let traits: Vec<Traits> = members
        .iter()
        .map(|rows| traits(table, rows, Some(&population)))
        .collect();
    let proposals: Vec<Vec<Proposal>> = traits.iter().map(proposals).collect();
    let chosen = resolve(&proposals);
    let mut names: Vec<String> = Vec::with_capacity(clusters);
    let mut summaries = Vec::with_capacity(clusters);
    for cluster in 0..clusters {
        let (mut name, campaign) = match &chosen[cluster] {
            Some(proposal) => (proposal.name.clone(), proposal.campaign),
            None => fallback(&profiles[cluster], &traits[cluster]),
        };
        if let Some(twin) = names.iter().position(|taken| *taken == name) {
            name = format!(
                "{name} ({})",
                distinguishing_trait(&profiles[cluster], &profiles[twin])
            );
        }
        let mut suffix = 2;
        let base = name.clone();
        while names.contains(&name) {
            name = format!("{base} {suffix}");
            suffix += 1;
        }
        names.push(name.clone());
        summaries.push(ClusterSummary {
            label: cluster,
            description: describe(&name, &traits[cluster]),
            name,
            suggested_campaign: campaign,
            size: members[cluster].len(),
            share: members[cluster].len() as f64 / players as f64,
            profile: profiles[cluster].clone(),
        });
    }
    summaries
}

/// Mean, population mean and z-score of every column, largest |z| first; `population` holds
/// each column's population mean and standard deviation.
fn profile(table: &FeatureTable, rows: &[usize], population: &[(f64, f64)]) -> Vec<FeatureProfile> {
    let mut profile: Vec<FeatureProfile> = table
        .columns
        .iter()
        .zip(population)
        .enumerate()
        .map(|(index, (feature, &(population_mean, population_std)))| {
            let column = table.values.column(index);
            let (mean, _) = mean_and_std(rows.iter().map(|row| column[*row]));
            let z_score = if population_std > 0.0 && mean.is_finite() {
                (mean - population_mean) / population_std
            } else {
                0.0
            };
            FeatureProfile {
                feature: feature.clone(),
                mean,
                population_mean,
                z_score,
            }
        })
        .collect();
    profile.sort_by(|left, right| right.z_score.abs().total_cmp(&left.z_score.abs()));
    profile
}

/// Mean and population standard deviation of the finite values (NaN when there are none).
fn mean_and_std(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let finite: Vec<f64> = values.filter(|value| value.is_finite()).collect();
    if finite.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let count = finite.len() as f64;
    let mean = finite.iter().sum::<f64>() / count;
    let variance = finite.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / count;
    (mean, variance.sqrt())
}

/// Median of the finite values of `column` at `rows` (NaN when there are none).
fn median(column: ArrayView1<'_, f64>, rows: &[usize]) -> f64 {
    let mut values: Vec<f64> = rows
        .iter()
        .map(|row| column[*row])
        .filter(|value| value.is_finite())
        .collect();
    if values.is_empty() {
        return f64::NAN;
    }
    let middle = values.len() / 2;
    let (_, value, _) = values.select_nth_unstable_by(middle, f64::total_cmp);
    *value
}

/// `value / reference`, 1 when both are 0, NaN when unknown.
fn ratio(value: f64, reference: f64) -> f64 {
    if reference > 0.0 {
        value / reference
    } else if value == 0.0 && reference == 0.0 {
        1.0
    } else if value > 0.0 {
        f64::INFINITY
    } else {
        f64::NAN
    }
}

/// The traits of the players at `rows`; ratios against `population` when given.
fn traits(table: &FeatureTable, rows: &[usize], population: Option<&Traits>) -> Traits {
    let mean_of = |name: &str| {
        table.column(name).map_or(f64::NAN, |column| {
            mean_and_std(rows.iter().map(|row| column[*row])).0
        })
    };
    let median_of = |name: &str| {
        table
            .column(name)
            .map_or(f64::NAN, |column| median(column, rows))
    };
    let shares: Vec<f64> = GAMES.iter().map(|(column, _, _)| mean_of(column)).collect();
    let dominant = shares
        .iter()
        .enumerate()
        .filter(|(_, share)| share.is_finite())
        .max_by(|left, right| left.1.total_cmp(right.1).then(right.0.cmp(&left.0)))
        .map(|(index, share)| (index, *share));
    let stake_median = median_of("avg_ticket");
    let night = mean_of("night_share");
    let weekend = mean_of("weekend_share");
    let recency = median_of("recency_days");
    let bonus = mean_of("bonus_share");
    let Some(population) = population else {
        return Traits {
            dominant,
            shares,
            stakes: stake_median,
            ticket: mean_of("avg_ticket"),
            night: (night, 1.0),
            weekend: (weekend, 1.0),
            recency: (recency, 1.0),
            bonus: (bonus, 1.0),
        };
    };
    Traits {
        dominant,
        shares,
        stakes: ratio(stake_median, population.stakes),
        ticket: mean_of("avg_ticket"),
        night: (night, ratio(night, population.night.0)),
        weekend: (weekend, ratio(weekend, population.weekend.0)),
        recency: (recency, ratio(recency, population.recency.0)),
        bonus: (bonus, ratio(bonus, population.bonus.0)),
    }
}

/// Share of the game at `index` of [`GAMES`] (0 when unknown).
fn share(traits: &Traits, index: usize) -> f64 {
    let value = traits.shares.get(index).copied().unwrap_or(f64::NAN);
    if value.is_finite() { value } else { 0.0 }
}

/// `value`, or `fallback` when it is NaN (an absent column).
fn known(value: f64, fallback: f64) -> f64 {
    if value.is_nan() { fallback } else { value }
}

/// Median stake over the population's from which a cluster is the whales': half the tail's
/// own multiple, so a tail cluster always qualifies and no ordinary high-stakes one does.
const WHALE_STAKES: f64 = crate::tail::TAIL_MULTIPLE / 2.0;

/// The names a cluster qualifies for, most specific first.
fn proposals(traits: &Traits) -> Vec<Proposal> {
    let crash = share(traits, 0);
    let slots = share(traits, 1);
    let live = share(traits, 2);
    let sports = share(traits, 3);
    let table = share(traits, 4);
    let stakes = known(traits.stakes, 1.0);
    let (night, night_ratio) = (known(traits.night.0, 0.0), known(traits.night.1, 1.0));
    let (weekend, weekend_ratio) = (known(traits.weekend.0, 0.0), known(traits.weekend.1, 1.0));
    let (recency, recency_ratio) = (known(traits.recency.0, 0.0), known(traits.recency.1, 1.0));
    let (bonus, bonus_ratio) = (known(traits.bonus.0, 0.0), known(traits.bonus.1, 1.0));
    let casino = crash + slots + live + table;
    let mut found = Vec::new();
    let mut propose = |name: String, strength: f64, campaign: CampaignType| {
        found.push(Proposal {
            name,
            strength,
            campaign,
        });
    };
    if stakes >= WHALE_STAKES {
        propose("VIP · High Roller".into(), stakes, CampaignType::VipHost);
    }
    if crash >= 0.4 && stakes >= 2.0 {
        propose(
            "High Roller Crash".into(),
            crash * stakes.min(10.0),
            CampaignType::VipHost,
        );
    }
    if live >= 0.4 && stakes >= 2.0 {
        propose(
            "VIP Live Dealer".into(),
            live * stakes.min(10.0),
            CampaignType::VipHost,
        );
    }
    if night >= 0.4 && night_ratio >= 2.0 && casino >= 0.5 {
        propose("Night Owl Casino".into(), night, CampaignType::Cashback);
    }
    if weekend >= 0.5 && weekend_ratio >= 1.5 {
        propose("Weekend Warrior".into(), weekend, CampaignType::FreeBets);
    }
    if sports >= 0.5 && stakes >= 1.5 {
        propose(
            "Sports Betting Pro".into(),
            sports * stakes.min(10.0),
            CampaignType::FreeBets,
        );
    }
    if slots >= 0.5 && stakes <= 1.0 {
        propose("Casual Slots".into(), slots, CampaignType::ReloadBonus);
    }
    if table >= 0.4 {
        propose("Table Games Regulars".into(), table, CampaignType::Cashback);
    }
    if bonus_ratio >= 2.0 && bonus >= 0.2 {
        propose("Bonus Hunters".into(), bonus, CampaignType::Cashback);
    }
    if recency_ratio >= 2.0 && recency >= 60.0 {
        let game = traits
            .dominant
            .map_or("Players", |(index, _)| GAMES[index].1);
        propose(
            format!("Lapsed {game}"),
            recency_ratio,
            CampaignType::Reactivation,
        );
    }
    if let Some((index, dominant_share)) = traits.dominant
        && dominant_share >= 0.4
    {
        let campaign = if index == 3 {
            CampaignType::FreeBets
        } else if stakes >= 2.0 {
            CampaignType::VipHost
        } else {
            CampaignType::ReloadBonus
        };
        propose(
            format!("{} Regulars", GAMES[index].1),
            dominant_share,
            campaign,
        );
    }
    found
}

/// Unique names: clusters that want the same name compete on strength (then the lower
/// label), losers move on to their next proposal; `None` when a cluster runs out.
fn resolve(proposals: &[Vec<Proposal>]) -> Vec<Option<Proposal>> {
    let mut next = vec![0usize; proposals.len()];
    loop {
        let wanted: Vec<Option<&Proposal>> = proposals
            .iter()
            .zip(&next)
            .map(|(list, position)| list.get(*position))
            .collect();
        let mut changed = false;
        for cluster in 0..proposals.len() {
            let Some(mine) = wanted[cluster] else {
                continue;
            };
            let beaten = wanted.iter().enumerate().any(|(other, theirs)| {
                other != cluster
                    && theirs.is_some_and(|theirs| {
                        theirs.name == mine.name
                            && (theirs.strength > mine.strength
                                || (theirs.strength == mine.strength && other < cluster))
                    })
            });
            if beaten {
                next[cluster] += 1;
                changed = true;
            }
        }
        if !changed {
            return wanted
                .into_iter()
                .map(|proposal| proposal.cloned())
                .collect();
        }
    }
}

/// A name from the three traits with the largest |z|, and a campaign from the traits.
fn fallback(profile: &[FeatureProfile], traits: &Traits) -> (String, CampaignType) {
    let mut words: Vec<&'static str> = Vec::new();
    for feature in profile {
        if feature.z_score.abs() < 0.25 {
            break;
        }
        if let Some(word) = trait_word(&feature.feature, feature.z_score)
            && !words.contains(&word)
        {
            words.push(word);
        }
        if words.len() == 3 {
            break;
        }
    }
    let name = if words.is_empty() {
        "Mainstream Players".to_string()
    } else {
        words.join(" · ")
    };
    let campaign = if known(traits.recency.1, 1.0) >= 2.0 {
        CampaignType::Reactivation
    } else if known(traits.stakes, 1.0) >= 2.0 {
        CampaignType::VipHost
    } else if traits.dominant.is_some_and(|(index, _)| index == 3) {
        CampaignType::FreeBets
    } else if profile
        .iter()
        .any(|feature| feature.feature == "tenure_days" && feature.z_score <= -1.0)
    {
        CampaignType::Welcome
    } else {
        CampaignType::ReloadBonus
    };
    (name, campaign)
}

/// A one- or two-word trait for a feature that is high (`z > 0`) or low in a cluster.
fn trait_word(feature: &str, z_score: f64) -> Option<&'static str> {
    let high = z_score > 0.0;
    let word = match feature {
        "share_crash" if high => "Crash",
        "share_slots" if high => "Slots",
        "share_live_casino" if high => "Live Casino",
        "share_sports" if high => "Sports",
        "share_table" if high => "Table Games",
        "night_share" => {
            if high {
                "Night"
            } else {
                "Daytime"
            }
        }
        "weekend_share" if high => "Weekend",
        "avg_ticket" | "total_staked" | "avg_deposit" | "deposit_sum" => {
            if high {
                "High Stakes"
            } else {
                "Low Stakes"
            }
        }
        "recency_days" if high => "Lapsed",
        "tenure_days" if !high => "New",
        "tenure_days" => "Loyal",
        "bonus_share" if high => "Bonus-Driven",
        "bet_cv" if high => "Volatile Stakes",
        "withdrawal_ratio" if high => "Cash-Out Heavy",
        "frequency" | "bet_count" | "sessions" | "active_days" => {
            if high {
                "Frequent"
            } else {
                "Occasional"
            }
        }
        _ => return None,
    };
    Some(word)
}

/// The trait that differs most between two clusters, for telling apart two that would
/// share a name.
fn distinguishing_trait(mine: &[FeatureProfile], theirs: &[FeatureProfile]) -> String {
    let mut best: Option<(f64, &str, f64)> = None;
    for feature in mine {
        let Some(other) = theirs.iter().find(|other| other.feature == feature.feature) else {
            continue;
        };
        let gap = feature.z_score - other.z_score;
        if trait_word(&feature.feature, gap).is_some()
            && best.is_none_or(|(largest, _, _)| gap.abs() > largest)
        {
            best = Some((gap.abs(), &feature.feature, gap));
        }
    }
    best.and_then(|(_, feature, gap)| trait_word(feature, gap))
        .unwrap_or("Variant")
        .to_string()
}

/// One sentence with the cluster's defining numbers.
fn describe(name: &str, traits: &Traits) -> String {
    let mut parts = Vec::new();
    if let Some((index, dominant_share)) = traits.dominant {
        parts.push(format!(
            "{:.0}% of bets on {}",
            dominant_share * 100.0,
            GAMES[index].2
        ));
    }
    if traits.ticket.is_finite() && traits.stakes.is_finite() {
        parts.push(format!(
            "average ticket €{:.2} with a median stake {:.1}× the population's",
            traits.ticket, traits.stakes
        ));
    }
    let (night, night_ratio) = traits.night;
    if night.is_finite() && night_ratio.is_finite() && night_ratio >= 1.5 {
        parts.push(format!(
            "{:.0}% of activity between 00:00 and 06:00 ({:.1}× the population)",
            night * 100.0,
            night_ratio
        ));
    }
    let (weekend, weekend_ratio) = traits.weekend;
    if weekend.is_finite() && weekend_ratio.is_finite() && weekend_ratio >= 1.5 {
        parts.push(format!(
            "{:.0}% of activity on weekends ({:.1}× the population)",
            weekend * 100.0,
            weekend_ratio
        ));
    }
    let (recency, recency_ratio) = traits.recency;
    if recency.is_finite() && recency_ratio.is_finite() && recency_ratio >= 1.5 {
        parts.push(format!("last seen a median {recency:.0} days ago"));
    }
    let (bonus, bonus_ratio) = traits.bonus;
    if bonus.is_finite() && bonus_ratio.is_finite() && bonus_ratio >= 2.0 {
        parts.push(format!("{:.0}% of funding from bonuses", bonus * 100.0));
    }
    if parts.is_empty() {
        return format!("{name}: close to the population average on every feature.");
    }
    format!("{name}: {}.", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    const COLUMNS: &[&str] = &[
        "share_crash",
        "share_slots",
        "share_live_casino",
        "share_sports",
        "share_table",
        "avg_ticket",
        "night_share",
        "weekend_share",
        "recency_days",
        "bonus_share",
    ];

    /// A table with `counts[c]` near-identical players of profile `c`, one profile per
    /// cluster.
    fn synthetic(profiles: &[[f64; 10]], counts: &[usize]) -> (FeatureTable, Vec<Option<usize>>) {
        let rows: usize = counts.iter().sum();
        let mut values = Array2::zeros((rows, COLUMNS.len()));
        let mut labels = Vec::new();
        let owners: Vec<usize> = counts
            .iter()
            .enumerate()
            .flat_map(|(cluster, count)| std::iter::repeat_n(cluster, *count))
            .collect();
        for (row, cluster) in owners.iter().copied().enumerate() {
            // A little spread so that no column is constant within the population.
            let jitter = 1.0 + (row % 10) as f64 * 1e-3;
            for (column, value) in profiles[cluster].iter().enumerate() {
                values[[row, column]] = value * jitter;
            }
            labels.push(Some(cluster));
        }
        let table = FeatureTable {
            player_ids: (0..rows).map(|row| row.to_string()).collect(),
            columns: COLUMNS.iter().map(|c| c.to_string()).collect(),
            values,
        };
        (table, labels)
    }

    #[test]
    fn planted_archetype_profiles_get_their_names() {
        // crash, slots, live, sports, table, ticket, night, weekend, recency, bonus
        let profiles = [
            [0.02, 0.93, 0.01, 0.01, 0.03, 0.6, 0.05, 0.28, 66.0, 0.15],
            [0.01, 0.11, 0.01, 0.74, 0.03, 10.0, 0.02, 1.0, 10.0, 0.05],
            [0.01, 0.02, 0.01, 0.92, 0.04, 46.0, 0.04, 0.2, 5.0, 0.0],
            [0.05, 0.52, 0.05, 0.02, 0.33, 3.6, 1.0, 0.28, 20.0, 0.08],
            [0.80, 0.10, 0.03, 0.03, 0.04, 81.0, 0.1, 0.28, 15.0, 0.02],
            [0.03, 0.05, 0.82, 0.03, 0.07, 170.0, 0.1, 0.28, 3.0, 0.02],
        ];
        // The planted shares of the peer's lakes: 30/25/20/15/5/5%.
        let (table, labels) = synthetic(&profiles, &[60, 50, 40, 30, 10, 10]);
        let summaries = summarize(&table, &labels, 6);
        let names: Vec<&str> = summaries.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "Casual Slots",
                "Weekend Warrior",
                "Sports Betting Pro",
                "Night Owl Casino",
                "High Roller Crash",
                "VIP Live Dealer"
            ]
        );
        assert_eq!(summaries[4].suggested_campaign, CampaignType::VipHost);
        assert!(
            summaries[5]
                .description
                .contains("82% of bets on live casino")
        );
    }

    #[test]
    fn two_clusters_wanting_one_name_get_distinct_names() {
        let profiles = [
            [0.02, 0.93, 0.01, 0.01, 0.03, 0.6, 0.05, 0.28, 10.0, 0.15],
            [0.02, 0.90, 0.01, 0.01, 0.06, 0.5, 0.05, 0.28, 200.0, 0.15],
            [0.02, 0.10, 0.01, 0.84, 0.03, 30.0, 0.05, 0.2, 5.0, 0.0],
        ];
        let (table, labels) = synthetic(&profiles, &[20, 20, 20]);
        let summaries = summarize(&table, &labels, 3);
        assert_eq!(summaries[0].name, "Casual Slots");
        assert_eq!(summaries[1].name, "Lapsed Slots");
        assert_eq!(summaries[1].suggested_campaign, CampaignType::Reactivation);
        let mut names: Vec<&str> = summaries.iter().map(|s| s.name.as_str()).collect();
        names.dedup();
        assert_eq!(names.len(), 3);
    }

    #[test]
    fn profiles_without_a_rule_get_their_top_traits() {
        let profiles = [
            [0.3, 0.3, 0.1, 0.2, 0.1, 5.0, 0.1, 0.3, 10.0, 0.1],
            [0.35, 0.3, 0.1, 0.15, 0.1, 5.0, 0.35, 0.3, 10.0, 0.1],
        ];
        let (table, labels) = synthetic(&profiles, &[20, 20]);
        let summaries = summarize(&table, &labels, 2);
        assert_ne!(summaries[0].name, summaries[1].name);
        assert!(summaries[1].name.contains("Night"), "{}", summaries[1].name);
    }
}
