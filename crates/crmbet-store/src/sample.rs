//! A small seeded sample for tests (feature `test-support`): served data — players,
//! features, a model with named clusters and segments — without running the ETL or
//! training.
//!
//! Players are drawn (seeded, deterministic) around six planted archetypes; the sample's
//! "model" is the planted labelling itself, stored with algorithm `builtin-sample` so it can
//! never be mistaken for a trained one.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crmbet_core::Result;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::json;

use crate::database::Store;
use crate::entity::{
    active_model, clusters, etl_runs, models, player_features, player_segments, players,
};
use crate::failure::database_error;
use crmbet_core::NUMERIC_FEATURES;

/// Algorithm name of the sample's model.
pub const SAMPLE_ALGORITHM: &str = "builtin-sample";

/// What [`Store::load_sample`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSummary {
    pub etl_run_id: i64,
    pub model_id: i64,
    pub players: usize,
    pub clusters: usize,
}

struct Archetype {
    name: &'static str,
    description: &'static str,
    suggested_campaign: &'static str,
    share: f64,
    /// crash, slots, live casino, sports, table
    game_mix: [f64; 5],
    ticket: f64,
    rows: f64,
    night_share: f64,
    weekend_share: f64,
    preferred_hour: i32,
    tenure_days: f64,
    recency_days: f64,
    bonus_share: f64,
    withdrawal_ratio: f64,
    return_to_player: f64,
}

const ARCHETYPES: &[Archetype] = &[
    Archetype {
        name: "Casual Slots",
        description: "Small slot stakes a few times a month, often with a bonus",
        suggested_campaign: "reload_bonus",
        share: 0.30,
        game_mix: [0.01, 0.93, 0.02, 0.02, 0.02],
        ticket: 0.6,
        rows: 22.0,
        night_share: 0.10,
        weekend_share: 0.30,
        preferred_hour: 20,
        tenure_days: 131.0,
        recency_days: 66.0,
        bonus_share: 0.15,
        withdrawal_ratio: 0.05,
        return_to_player: 0.96,
    },
    Archetype {
        name: "Weekend Warrior",
        description: "Bets on sports almost only on Saturdays and Sundays",
        suggested_campaign: "free_bets",
        share: 0.25,
        game_mix: [0.02, 0.11, 0.05, 0.74, 0.08],
        ticket: 10.0,
        rows: 40.0,
        night_share: 0.05,
        weekend_share: 0.98,
        preferred_hour: 16,
        tenure_days: 200.0,
        recency_days: 12.0,
        bonus_share: 0.08,
        withdrawal_ratio: 0.15,
        return_to_player: 0.94,
    },
    Archetype {
        name: "Sports Betting Pro",
        description: "Large, disciplined sports stakes in short sessions, no bonuses",
        suggested_campaign: "cashback",
        share: 0.20,
        game_mix: [0.01, 0.03, 0.02, 0.92, 0.02],
        ticket: 46.0,
        rows: 90.0,
        night_share: 0.04,
        weekend_share: 0.35,
        preferred_hour: 13,
        tenure_days: 260.0,
        recency_days: 5.0,
        bonus_share: 0.0,
        withdrawal_ratio: 0.29,
        return_to_player: 0.99,
    },
    Archetype {
        name: "Night Owl Casino",
        description: "Plays slots and table games between midnight and 6 am",
        suggested_campaign: "reload_bonus",
        share: 0.15,
        game_mix: [0.03, 0.52, 0.07, 0.05, 0.33],
        ticket: 3.6,
        rows: 70.0,
        night_share: 0.97,
        weekend_share: 0.30,
        preferred_hour: 3,
        tenure_days: 180.0,
        recency_days: 9.0,
        bonus_share: 0.10,
        withdrawal_ratio: 0.10,
        return_to_player: 0.97,
    },
    Archetype {
        name: "High Roller Crash",
        description: "Big, volatile stakes on crash games with large deposits",
        suggested_campaign: "vip_host",
        share: 0.05,
        game_mix: [0.80, 0.08, 0.04, 0.04, 0.04],
        ticket: 81.0,
        rows: 110.0,
        night_share: 0.20,
        weekend_share: 0.30,
        preferred_hour: 22,
        tenure_days: 220.0,
        recency_days: 4.0,
        bonus_share: 0.03,
        withdrawal_ratio: 0.35,
        return_to_player: 0.97,
    },
    Archetype {
        name: "VIP Live Dealer",
        description: "Long-standing players with the highest stakes at live casino tables",
        suggested_campaign: "vip_host",
        share: 0.05,
        game_mix: [0.02, 0.06, 0.82, 0.04, 0.06],
        ticket: 170.0,
        rows: 148.0,
        night_share: 0.12,
        weekend_share: 0.32,
        preferred_hour: 21,
        tenure_days: 349.0,
        recency_days: 3.0,
        bonus_share: 0.02,
        withdrawal_ratio: 0.30,
        return_to_player: 0.985,
    },
];

const COUNTRIES: &[&str] = &["GB", "DE", "SE", "NO", "CA", "BR", "MT", "FI"];
const GAMES: &[&str] = &["crash", "slots", "live_casino", "sports", "table"];

impl Store {
    /// Writes the sample: one ETL run with `player_count` players' features, one model with
    /// a cluster per archetype, every player's segment, and makes that model active.
    pub async fn load_sample(&self, player_count: usize, seed: u64) -> Result<SampleSummary> {
        let lake_end = Utc
            .with_ymd_and_hms(2026, 6, 30, 23, 59, 59)
            .single()
            .unwrap_or_else(Utc::now);
        let now = Utc::now();
        let mut random = StdRng::seed_from_u64(seed);
        let mut drawn: Vec<(usize, player_features::Model, players::Model)> = (0..player_count)
            .map(|index| {
                let archetype = pick_archetype(&mut random);
                let user_id = format!("sample-{seed}-{index:06}");
                let (features, player) =
                    draw_player(&mut random, archetype, &user_id, lake_end, now);
                (archetype, features, player)
            })
            .collect();
        assign_rfm_scores(&mut drawn);

        let transaction = self.begin_write().await?;
        let etl_run = etl_runs::Entity::insert(etl_runs::ActiveModel {
            source: Set("builtin-sample".to_owned()),
            status: Set("succeeded".to_owned()),
            full_refresh: Set(true),
            started_at: Set(now),
            finished_at: Set(Some(now)),
            players: Set(i64::try_from(player_count).unwrap_or(i64::MAX)),
            quality_score: Set(Some(1.0)),
            grade: Set(Some("A".to_owned())),
            ..Default::default()
        })
        .exec(&transaction)
        .await
        .map_err(database_error)?;
        let etl_run_id = etl_run.last_insert_id;

        for (_, features, _) in &mut drawn {
            features.etl_run_id = etl_run_id;
        }
        for (_, _, player) in &mut drawn {
            player.latest_etl_run_id = Some(etl_run_id);
        }
        for chunk in drawn.chunks(400) {
            players::Entity::insert_many(
                chunk
                    .iter()
                    .map(|(_, _, player)| players::ActiveModel::from(player.clone())),
            )
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(players::Column::UserId)
                    .update_columns([
                        players::Column::LatestEtlRunId,
                        players::Column::LastActiveAt,
                        players::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(&transaction)
            .await
            .map_err(database_error)?;
            player_features::Entity::insert_many(
                chunk
                    .iter()
                    .map(|(_, features, _)| player_features::ActiveModel::from(features.clone())),
            )
            .exec(&transaction)
            .await
            .map_err(database_error)?;
        }

        let version = models::Entity::find()
            .all(&transaction)
            .await
            .map_err(database_error)?
            .iter()
            .map(|model| model.version)
            .max()
            .unwrap_or(0)
            + 1;
        let model = models::Entity::insert(models::ActiveModel {
            version: Set(version),
            algorithm: Set(SAMPLE_ALGORITHM.to_owned()),
            k: Set(i32::try_from(ARCHETYPES.len()).unwrap_or(i32::MAX)),
            parameters: Set(json!({ "players": player_count, "seed": seed })),
            transform: Set(json!({})),
            centroids: Set(json!([])),
            metrics: Set(json!({})),
            feature_names: Set(json!(NUMERIC_FEATURES)),
            etl_run_id: Set(Some(etl_run_id)),
            selection_reason: Set(
                "built-in sample: the planted archetypes, not a trained model".to_owned(),
            ),
            created_at: Set(now),
            ..Default::default()
        })
        .exec(&transaction)
        .await
        .map_err(database_error)?;
        let model_id = model.last_insert_id;

        let population: Vec<&player_features::Model> =
            drawn.iter().map(|(_, features, _)| features).collect();
        let mut cluster_ids = Vec::with_capacity(ARCHETYPES.len());
        for (label, archetype) in ARCHETYPES.iter().enumerate() {
            let members: Vec<&player_features::Model> = drawn
                .iter()
                .filter(|(index, _, _)| *index == label)
                .map(|(_, features, _)| features)
                .collect();
            let cluster = clusters::Entity::insert(clusters::ActiveModel {
                model_id: Set(model_id),
                label: Set(i32::try_from(label).unwrap_or(i32::MAX)),
                name: Set(archetype.name.to_owned()),
                description: Set(archetype.description.to_owned()),
                suggested_campaign: Set(archetype.suggested_campaign.to_owned()),
                size: Set(i64::try_from(members.len()).unwrap_or(i64::MAX)),
                share: Set(members.len() as f64 / player_count.max(1) as f64),
                profile: Set(profile(&members, &population)),
                centroid: Set(json!([])),
                created_at: Set(now),
                ..Default::default()
            })
            .exec(&transaction)
            .await
            .map_err(database_error)?;
            cluster_ids.push(cluster.last_insert_id);
        }

        for chunk in drawn.chunks(500) {
            player_segments::Entity::insert_many(chunk.iter().map(|(label, _, player)| {
                player_segments::ActiveModel {
                    model_id: Set(model_id),
                    user_id: Set(player.user_id.clone()),
                    cluster_id: Set(cluster_ids[*label]),
                    confidence: Set(1.0),
                    outlier: Set(false),
                    assigned_at: Set(now),
                }
            }))
            .exec(&transaction)
            .await
            .map_err(database_error)?;
        }

        active_model::Entity::insert(active_model::ActiveModel {
            slot: Set(active_model::SEGMENTATION_SLOT.to_owned()),
            model_id: Set(model_id),
            activated_at: Set(now),
            activated_by: Set(Some("builtin-sample".to_owned())),
        })
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(active_model::Column::Slot)
                .update_columns([
                    active_model::Column::ModelId,
                    active_model::Column::ActivatedAt,
                    active_model::Column::ActivatedBy,
                ])
                .to_owned(),
        )
        .exec(&transaction)
        .await
        .map_err(database_error)?;
        transaction.commit().await.map_err(database_error)?;

        Ok(SampleSummary {
            etl_run_id,
            model_id,
            players: player_count,
            clusters: ARCHETYPES.len(),
        })
    }
}

fn pick_archetype(random: &mut StdRng) -> usize {
    let mut draw: f64 = random.random();
    for (index, archetype) in ARCHETYPES.iter().enumerate() {
        if draw < archetype.share {
            return index;
        }
        draw -= archetype.share;
    }
    0
}

/// A log-normal factor with median 1 and the given spread.
fn spread(random: &mut StdRng, sigma: f64) -> f64 {
    let uniform_one: f64 = random.random::<f64>().max(f64::MIN_POSITIVE);
    let uniform_two: f64 = random.random();
    let normal = (-2.0 * uniform_one.ln()).sqrt() * (std::f64::consts::TAU * uniform_two).cos();
    (sigma * normal).exp()
}

fn draw_player(
    random: &mut StdRng,
    archetype_index: usize,
    user_id: &str,
    lake_end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (player_features::Model, players::Model) {
    let archetype = &ARCHETYPES[archetype_index];
    let mut mix: Vec<f64> = archetype
        .game_mix
        .iter()
        .map(|share| share * spread(random, 0.25))
        .collect();
    let total: f64 = mix.iter().sum();
    mix.iter_mut().for_each(|share| *share /= total);
    let favourite = mix
        .iter()
        .enumerate()
        .max_by(|left, right| left.1.total_cmp(right.1))
        .map_or(1, |(index, _)| index);

    let frequency = (archetype.rows * spread(random, 0.4)).round().max(3.0);
    let bet_count = (frequency * 0.75).round().max(1.0);
    let sessions = (bet_count / 6.0 * spread(random, 0.3)).round().max(1.0);
    let average_ticket = archetype.ticket * spread(random, 0.35);
    let total_staked = bet_count * average_ticket;
    let net_revenue = total_staked * (1.0 - archetype.return_to_player) * spread(random, 0.5);
    let deposit_count = (frequency * 0.12).round().max(1.0);
    let deposit_sum = (total_staked * 0.35 + average_ticket * 4.0) * spread(random, 0.3);
    let withdrawal_ratio = (archetype.withdrawal_ratio * spread(random, 0.3)).min(1.5);
    let withdrawal_sum = deposit_sum * withdrawal_ratio;
    let withdrawal_count = if withdrawal_sum > 0.0 {
        (deposit_count * 0.4).round().max(1.0)
    } else {
        0.0
    };
    let bonus_share = (archetype.bonus_share * spread(random, 0.3)).min(0.9);
    let tenure_days = (archetype.tenure_days * spread(random, 0.3)).min(365.0);
    let recency_days = (archetype.recency_days * spread(random, 0.5)).min(tenure_days);
    let active_days = (frequency / 3.0).round().clamp(1.0, tenure_days.max(1.0));
    let bet_cv = if archetype.name == "High Roller Crash" {
        1.4
    } else {
        0.6
    } * spread(random, 0.2);
    let hour_noise: i32 = random.random_range(-1..=1);

    let country = COUNTRIES[random.random_range(0..COUNTRIES.len())];
    let features = player_features::Model {
        etl_run_id: 0,
        user_id: user_id.to_owned(),
        favourite_game: GAMES[favourite].to_owned(),
        share_crash: mix[0],
        share_slots: mix[1],
        share_live_casino: mix[2],
        share_sports: mix[3],
        share_table: mix[4],
        bet_count: bet_count as i64,
        bet_std: bet_cv * average_ticket,
        bet_cv,
        sessions: sessions as i64,
        bets_per_session: bet_count / sessions,
        avg_ticket: average_ticket,
        total_staked,
        ngr: net_revenue,
        deposit_count: deposit_count as i64,
        deposit_sum,
        avg_deposit: deposit_sum / deposit_count,
        withdrawal_count: withdrawal_count as i64,
        withdrawal_sum,
        withdrawal_ratio,
        bonus_share,
        clv_estimate: net_revenue / tenure_days.max(1.0) * 365.0,
        night_share: (archetype.night_share * spread(random, 0.1)).min(1.0),
        weekend_share: (archetype.weekend_share * spread(random, 0.1)).min(1.0),
        preferred_hour: (archetype.preferred_hour + hour_noise).rem_euclid(24),
        preferred_weekday: if archetype.weekend_share > 0.9 {
            6
        } else {
            random.random_range(1..=7)
        },
        active_days: active_days as i64,
        tenure_days,
        recency_days,
        frequency: frequency as i64,
        monetary: deposit_sum,
        r_score: 0,
        f_score: 0,
        m_score: 0,
    };
    let player = players::Model {
        user_id: user_id.to_owned(),
        country: Some(country.to_owned()),
        first_seen_at: Some(lake_end - Duration::seconds((tenure_days * 86_400.0) as i64)),
        last_active_at: Some(lake_end - Duration::seconds((recency_days * 86_400.0) as i64)),
        latest_etl_run_id: None,
        created_at: now,
        updated_at: now,
    };
    (features, player)
}

/// Quintile scores 1..=5 in SQL `ntile(5)` order (ties by user id); 5 is best, so recency
/// ranks the most recent players highest.
fn assign_rfm_scores(drawn: &mut [(usize, player_features::Model, players::Model)]) {
    let count = drawn.len();
    if count == 0 {
        return;
    }
    let mut order: Vec<usize> = (0..count).collect();
    let quintile = |rank: usize| i32::try_from(rank * 5 / count + 1).unwrap_or(5);

    order.sort_by(|&left, &right| {
        let (a, b) = (&drawn[left].1, &drawn[right].1);
        b.recency_days
            .total_cmp(&a.recency_days)
            .then_with(|| a.user_id.cmp(&b.user_id))
    });
    for (rank, &index) in order.iter().enumerate() {
        drawn[index].1.r_score = quintile(rank);
    }
    order.sort_by(|&left, &right| {
        let (a, b) = (&drawn[left].1, &drawn[right].1);
        a.frequency
            .cmp(&b.frequency)
            .then_with(|| a.user_id.cmp(&b.user_id))
    });
    for (rank, &index) in order.iter().enumerate() {
        drawn[index].1.f_score = quintile(rank);
    }
    order.sort_by(|&left, &right| {
        let (a, b) = (&drawn[left].1, &drawn[right].1);
        a.monetary
            .total_cmp(&b.monetary)
            .then_with(|| a.user_id.cmp(&b.user_id))
    });
    for (rank, &index) in order.iter().enumerate() {
        drawn[index].1.m_score = quintile(rank);
    }
}

/// The features that set `members` apart from `population`, strongest first (at most 8).
fn profile(
    members: &[&player_features::Model],
    population: &[&player_features::Model],
) -> serde_json::Value {
    let columns = [
        (
            "share_crash",
            (|features: &player_features::Model| features.share_crash)
                as fn(&player_features::Model) -> f64,
        ),
        ("share_slots", |features| features.share_slots),
        ("share_live_casino", |features| features.share_live_casino),
        ("share_sports", |features| features.share_sports),
        ("share_table", |features| features.share_table),
        ("avg_ticket", |features| features.avg_ticket),
        ("night_share", |features| features.night_share),
        ("weekend_share", |features| features.weekend_share),
        ("monetary", |features| features.monetary),
        ("frequency", |features| features.frequency as f64),
        ("recency_days", |features| features.recency_days),
        ("tenure_days", |features| features.tenure_days),
        ("bonus_share", |features| features.bonus_share),
        ("withdrawal_ratio", |features| features.withdrawal_ratio),
    ];
    let mean = |rows: &[&player_features::Model], value: fn(&player_features::Model) -> f64| {
        rows.iter().map(|row| value(row)).sum::<f64>() / rows.len().max(1) as f64
    };
    let mut deviations: Vec<(f64, serde_json::Value)> = columns
        .iter()
        .map(|(name, value)| {
            let group_mean = mean(members, *value);
            let population_mean = mean(population, *value);
            let variance = population
                .iter()
                .map(|row| (value(row) - population_mean).powi(2))
                .sum::<f64>()
                / population.len().max(1) as f64;
            let z_score = if variance > 0.0 { (group_mean - population_mean) / variance.sqrt() } else { 0.0 };
            (
                z_score.abs(),
                json!({ "feature": name, "group_mean": group_mean, "population_mean": population_mean, "z_score": z_score }),
            )
        })
        .collect();
    deviations.sort_by(|left, right| right.0.total_cmp(&left.0));
    serde_json::Value::Array(
        deviations
            .into_iter()
            .take(8)
            .map(|(_, value)| value)
            .collect(),
    )
}
