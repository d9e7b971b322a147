//! The store on both engines: the same migrations and queries against SQLite and the
//! machine's PostgreSQL (`CRMBET_TEST_POSTGRES_URL`, default the local trust-auth server).

// Test helpers unwrap on purpose: the panic with the error is the failure report.
#![allow(clippy::unwrap_used)]

use chrono::Utc;
use crmbet_core::delivery::{
    CAMPAIGN_DELIVERY_TOPIC, OutboxMessage, ProfileUpdates, SegmentChange,
};
use crmbet_core::{ClusterId, NUMERIC_FEATURES, PlayerId};
use crmbet_store::entity::player_features;
use crmbet_store::throwaway_postgres::ThrowawayPostgres;
use crmbet_store::{
    EtlRunRecord, EtlRunSummary, LakeRestrictionRow, LakeRestrictionsApplied, LoadedObject,
    NewAccount, NewCluster, NewModel, NewRefreshToken, NewRestrictions, NewSegment, NewTrainingRun,
    PlayerRecord, PlayerSearch, QuarantineRecord, RestrictionFlags, Rotation, Store,
    TrainingStatus,
};

const SAMPLE_PLAYERS: usize = 400;

async fn sqlite_store(directory: &tempfile::TempDir) -> Store {
    let url = format!(
        "sqlite://{}?mode=rwc",
        directory.path().join("crmbet.db").display()
    );
    Store::connect(&url).await.expect("opening SQLite")
}

#[tokio::test]
async fn migrations_and_reads_on_sqlite() {
    let directory = tempfile::tempdir().unwrap();
    let store = sqlite_store(&directory).await;
    check_migrations_round_trip(&store).await;
    check_reads(&store).await;
    check_etl_records(&store).await;
    check_training_records(&store).await;
    check_accounts_and_refresh_tokens(&store).await;
}

#[tokio::test]
async fn migrations_and_reads_on_postgres() {
    let database = ThrowawayPostgres::create("crmbet_store").await;
    let store = Store::connect(&database.url)
        .await
        .expect("opening PostgreSQL");
    check_migrations_round_trip(&store).await;
    check_reads(&store).await;
    check_etl_records(&store).await;
    check_training_records(&store).await;
    check_accounts_and_refresh_tokens(&store).await;
}

#[tokio::test]
async fn lake_restrictions_on_sqlite() {
    let directory = tempfile::tempdir().unwrap();
    let store = sqlite_store(&directory).await;
    store.migrate_up().await.unwrap();
    check_lake_restrictions(&store).await;
}

#[tokio::test]
async fn lake_restrictions_on_postgres() {
    let database = ThrowawayPostgres::create("crmbet_lake_restrictions").await;
    let store = Store::connect(&database.url)
        .await
        .expect("opening PostgreSQL");
    store.migrate_up().await.unwrap();
    check_lake_restrictions(&store).await;
}

fn lake_row(user_id: &str, flags: RestrictionFlags) -> LakeRestrictionRow {
    LakeRestrictionRow {
        user_id: user_id.to_owned(),
        flags,
        updated_at: None,
    }
}

async fn stored_flags(store: &Store, user_id: &str) -> Option<(RestrictionFlags, String)> {
    store.restrictions(user_id).await.unwrap().map(|row| {
        (
            RestrictionFlags {
                self_excluded: row.self_excluded,
                blocked: row.blocked,
                marketing_opt_out: row.marketing_opt_out,
            },
            row.source,
        )
    })
}

/// The lake owns its rows (and may lift them), only adds to rows set by hand, leaves absent
/// players alone, and writes a snapshot larger than one batch.
async fn check_lake_restrictions(store: &Store) {
    let none = RestrictionFlags::default();
    let excluded = RestrictionFlags {
        self_excluded: true,
        ..none
    };
    let blocked = RestrictionFlags {
        blocked: true,
        ..none
    };
    let opted_out = RestrictionFlags {
        marketing_opt_out: true,
        ..none
    };
    store
        .set_restrictions(NewRestrictions {
            user_id: "by_api".to_owned(),
            self_excluded: true,
            blocked: false,
            marketing_opt_out: false,
            source: "api".to_owned(),
            updated_by: Some("compliance".to_owned()),
        })
        .await
        .unwrap();
    store
        .opt_out_of_marketing("unsubscribed", "webhook")
        .await
        .unwrap();
    let many: Vec<LakeRestrictionRow> = (0..2_500)
        .map(|index| {
            let flags = if index % 3 == 0 { blocked } else { none };
            lake_row(&format!("bulk{index:05}"), flags)
        })
        .collect();
    let mut first = vec![
        lake_row("by_lake", excluded),
        lake_row("by_api", none),
        lake_row("unsubscribed", blocked),
        lake_row("clean", none),
    ];
    first.extend(many.iter().cloned());

    let applied = store
        .apply_lake_restrictions(&first, "lake ./lake")
        .await
        .unwrap();

    let bulk_blocked = many.iter().filter(|row| row.flags.any()).count() as u64;
    assert_eq!(
        applied,
        LakeRestrictionsApplied {
            players_restricted: 3 + bulk_blocked,
            players_updated: 2 + bulk_blocked,
        }
    );
    assert_eq!(
        stored_flags(store, "by_lake").await,
        Some((excluded, "lake".to_owned()))
    );
    assert_eq!(
        stored_flags(store, "by_api").await,
        Some((excluded, "api".to_owned())),
        "the lake never lifts a restriction set through the API"
    );
    let by_api = store.restrictions("by_api").await.unwrap().unwrap();
    assert_eq!(by_api.updated_by.as_deref(), Some("compliance"));
    assert_eq!(
        stored_flags(store, "unsubscribed").await,
        Some((
            RestrictionFlags {
                blocked: true,
                ..opted_out
            },
            "webhook".to_owned()
        )),
        "a webhook unsubscribe keeps its opt-out and gains the lake's block"
    );
    assert_eq!(stored_flags(store, "clean").await, None);
    assert_eq!(
        stored_flags(store, "bulk02499").await,
        Some((blocked, "lake".to_owned()))
    );
    assert_eq!(stored_flags(store, "bulk02498").await, None);

    // The same snapshot again changes nothing.
    let again = store
        .apply_lake_restrictions(&first, "lake ./lake")
        .await
        .unwrap();
    assert_eq!(again.players_updated, 0);
    assert_eq!(again.players_restricted, applied.players_restricted);

    // The next snapshot lifts the lake's own exclusion, cannot lift the API's, and leaves
    // the players it does not list alone; the last row of a player wins.
    let second = [
        lake_row("by_lake", blocked),
        lake_row("by_lake", none),
        lake_row("by_api", none),
    ];
    let applied = store
        .apply_lake_restrictions(&second, "lake ./lake")
        .await
        .unwrap();
    assert_eq!(
        applied,
        LakeRestrictionsApplied {
            players_restricted: 1,
            players_updated: 1,
        }
    );
    assert_eq!(
        stored_flags(store, "by_lake").await,
        Some((none, "lake".to_owned()))
    );
    assert_eq!(
        stored_flags(store, "by_api").await,
        Some((excluded, "api".to_owned()))
    );
    assert_eq!(
        stored_flags(store, "bulk00000").await,
        Some((blocked, "lake".to_owned()))
    );
    let restricted = store.restricted_players().await.unwrap();
    assert!(restricted.iter().all(|row| row.user_id != "by_lake"));
}

#[tokio::test]
async fn sqlite_folder_is_created_on_first_use() {
    let directory = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        directory.path().join("nested/data/crmbet.db").display()
    );
    let store = Store::connect(&url).await.unwrap();
    store.migrate_up().await.unwrap();
    assert!(directory.path().join("nested/data/crmbet.db").exists());
}

async fn check_migrations_round_trip(store: &Store) {
    store.migrate_up().await.unwrap();
    let status = store.migration_status().await.unwrap();
    assert!(status.pending.is_empty(), "{status:?}");
    let applied = status.applied.len();
    assert!(applied >= 2, "{status:?}");
    store
        .migrate_down(u32::try_from(applied).unwrap())
        .await
        .unwrap();
    assert_eq!(store.migration_status().await.unwrap().applied.len(), 0);
    store.migrate_up().await.unwrap();
    store.migrate_up().await.unwrap();
    assert_eq!(
        store.migration_status().await.unwrap().applied.len(),
        applied
    );
}

async fn check_reads(store: &Store) {
    assert_eq!(store.active_model_id().await.unwrap(), None);
    let summary = store.load_sample(SAMPLE_PLAYERS, 11).await.unwrap();
    let model_id = store
        .active_model_id()
        .await
        .unwrap()
        .expect("sample activates its model");
    assert_eq!(model_id.0, summary.model_id);

    // Clusters page by id and cover every player.
    let first_page = store.list_clusters(model_id, None, 4).await.unwrap();
    assert_eq!(first_page.len(), 4);
    let rest = store
        .list_clusters(model_id, Some(first_page[3].id), 100)
        .await
        .unwrap();
    assert_eq!(rest.len(), summary.clusters - 4);
    let total: i64 = first_page
        .iter()
        .chain(&rest)
        .map(|cluster| cluster.size)
        .sum();
    assert_eq!(total, i64::try_from(SAMPLE_PLAYERS).unwrap());
    let names: std::collections::HashSet<_> = first_page
        .iter()
        .chain(&rest)
        .map(|cluster| cluster.name.clone())
        .collect();
    assert!(names.contains("Night Owl Casino"), "{names:?}");

    // Members page by user id without gaps or repeats.
    let biggest = first_page
        .iter()
        .chain(&rest)
        .max_by_key(|cluster| cluster.size)
        .unwrap()
        .clone();
    let cluster_id = ClusterId(biggest.id);
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list_cluster_members(cluster_id, after.as_deref(), 25)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(
            page.iter()
                .all(|member| member.monetary.is_some() && member.country.is_some())
        );
        after = page.last().map(|member| member.user_id.clone());
        seen.extend(page.into_iter().map(|member| member.user_id));
    }
    assert_eq!(seen.len(), usize::try_from(biggest.size).unwrap());
    assert!(seen.windows(2).all(|pair| pair[0] < pair[1]));

    // Analytics agree with the members.
    let analytics = store.cluster_analytics(cluster_id).await.unwrap();
    assert_eq!(analytics.players_with_features, biggest.size);
    let score_total: i64 = analytics
        .monetary_scores
        .iter()
        .map(|group| group.players)
        .sum();
    assert_eq!(score_total, biggest.size);
    assert!(analytics.total_monetary > 0.0);
    let country_total: i64 = analytics
        .top_countries
        .iter()
        .map(|group| group.players)
        .sum();
    assert!(country_total <= biggest.size && country_total > 0);

    // A member's segment and behaviour.
    let player = PlayerId::parse("user_id", &seen[0]).unwrap();
    let segment = store.player_segment(model_id, &player).await.unwrap();
    assert_eq!(segment.cluster_id, biggest.id);
    assert_eq!(segment.cluster_name, biggest.name);
    let behavior = store.player_behavior(&player).await.unwrap();
    assert_eq!(behavior.features.etl_run_id, summary.etl_run_id);
    assert!((1..=5).contains(&behavior.features.r_score));
    let unknown = PlayerId::parse("user_id", "nobody").unwrap();
    assert!(store.player_segment(model_id, &unknown).await.is_err());

    // Search filters combine.
    let everyone = store
        .search_players(Some(model_id), &PlayerSearch::default(), None, 1000)
        .await
        .unwrap();
    assert_eq!(everyone.len(), SAMPLE_PLAYERS);
    let in_cluster = PlayerSearch {
        cluster_id: Some(cluster_id),
        min_monetary: Some(10.0),
        country: Some("GB".to_owned()),
        ..PlayerSearch::default()
    };
    let found = store
        .search_players(Some(model_id), &in_cluster, None, 1000)
        .await
        .unwrap();
    let expected = everyone
        .iter()
        .filter(|row| {
            row.cluster_id == Some(biggest.id)
                && row.monetary.unwrap_or_default() >= 10.0
                && row.country.as_deref() == Some("GB")
        })
        .count();
    assert_eq!(found.len(), expected);
    assert!(!found.is_empty());
    let prefix = PlayerSearch {
        user_id_prefix: Some("sample-11-00001".to_owned()),
        ..PlayerSearch::default()
    };
    let by_prefix = store
        .search_players(Some(model_id), &prefix, None, 1000)
        .await
        .unwrap();
    assert_eq!(by_prefix.len(), 10);
    let wrong_case = PlayerSearch {
        user_id_prefix: Some("SAMPLE-11".to_owned()),
        ..PlayerSearch::default()
    };
    let none = store
        .search_players(Some(model_id), &wrong_case, None, 1000)
        .await
        .unwrap();
    assert!(none.is_empty());
}

fn features_of(user_id: &str, monetary: f64) -> player_features::Model {
    player_features::Model {
        etl_run_id: 0,
        user_id: user_id.to_owned(),
        favourite_game: "slots".to_owned(),
        share_crash: 0.0,
        share_slots: 1.0,
        share_live_casino: 0.0,
        share_sports: 0.0,
        share_table: 0.0,
        bet_count: 3,
        bet_std: 1.0,
        bet_cv: 0.5,
        sessions: 1,
        bets_per_session: 3.0,
        avg_ticket: 2.0,
        total_staked: 6.0,
        ngr: 1.5,
        deposit_count: 1,
        deposit_sum: monetary,
        avg_deposit: monetary,
        withdrawal_count: 0,
        withdrawal_sum: 0.0,
        withdrawal_ratio: 0.0,
        bonus_share: 0.0,
        clv_estimate: 4.0,
        night_share: 0.25,
        weekend_share: 0.5,
        preferred_hour: 22,
        preferred_weekday: 6,
        active_days: 2,
        tenure_days: 10.0,
        recency_days: 1.0,
        frequency: 4,
        monetary,
        r_score: 5,
        f_score: 3,
        m_score: 4,
    }
}

async fn check_etl_records(store: &Store) {
    let now = Utc::now();
    let object = LoadedObject {
        key: "transactions/dt=2026-06-30/part-0.csv".to_owned(),
        size_bytes: 1234,
        etag: "abc".to_owned(),
    };
    let record = EtlRunRecord {
        source: "/lakes/test".to_owned(),
        full_refresh: false,
        started_at: now,
        finished_at: now,
        status: "succeeded".to_owned(),
        summary: EtlRunSummary {
            objects_read: 1,
            rows_read: 10,
            rows_loaded: 8,
            rows_quarantined: 2,
            players: 2,
            quality_score: 0.9,
            grade: "A".to_owned(),
            ..EtlRunSummary::default()
        },
        report: serde_json::json!({ "failed_objects": [] }),
        quarantine: vec![QuarantineRecord {
            rule: "amount_invalid".to_owned(),
            source_object: object.key.clone(),
            row_json: "{\"amount\":\"-1\"}".to_owned(),
        }],
        players: vec![
            PlayerRecord {
                user_id: "etl-a".to_owned(),
                country: Some("GB".to_owned()),
                first_seen_at: Some(now),
                last_active_at: Some(now),
            },
            PlayerRecord {
                user_id: "etl-b".to_owned(),
                country: None,
                first_seen_at: Some(now),
                last_active_at: Some(now),
            },
        ],
        features: vec![features_of("etl-a", 100.0), features_of("etl-b", 5.0)],
        loaded_objects: vec![object.clone()],
        live_through_id: Some(7),
        newest_micros: Some(1_000_000),
        recent_ids: vec![("t-recent".to_owned(), 900_000)],
        live_window_micros: 500_000,
    };
    assert_eq!(store.live_watermark("/lakes/test").await.unwrap(), 0);
    let first = store.record_etl_run(record.clone()).await.unwrap();
    assert_eq!(
        store.loaded_objects("/lakes/test").await.unwrap(),
        vec![object.clone()]
    );
    assert_eq!(store.live_watermark("/lakes/test").await.unwrap(), 7);
    assert_eq!(
        store.live_late_horizon(500_000).await.unwrap(),
        Some(500_000)
    );
    // A second run that loads the same object again keeps one watermark row.
    let second = store.record_etl_run(record.clone()).await.unwrap();
    assert!(second.0 > first.0);
    assert_eq!(store.loaded_objects("/lakes/test").await.unwrap().len(), 1);
    let player = PlayerId::parse("user_id", "etl-a").unwrap();
    let behavior = store.player_behavior(&player).await.unwrap();
    assert_eq!(behavior.features.etl_run_id, second.0);
    assert_eq!(behavior.features.monetary, 100.0);
    assert_eq!(
        store.latest_etl_run().await.unwrap().map(|run| run.id),
        Some(second.0)
    );
    // A full refresh replaces the watermark: the objects it loaded, and no other.
    let other_object = LoadedObject {
        key: "transactions/dt=2026-06-02/part-0.parquet".to_owned(),
        ..object.clone()
    };
    let refresh = EtlRunRecord {
        full_refresh: true,
        loaded_objects: vec![other_object.clone()],
        ..record
    };
    store.record_etl_run(refresh).await.unwrap();
    assert_eq!(
        store.loaded_objects("/lakes/test").await.unwrap(),
        vec![other_object]
    );
    let counts = store.row_counts().await.unwrap();
    assert!(counts["quarantine"] >= 2);
}

/// Runs after `check_etl_records`: the latest ETL run holds players etl-a and etl-b.
async fn check_training_records(store: &Store) {
    let etl_run_id = store.latest_etl_run_with_features().await.unwrap().unwrap();
    let rows = store.feature_rows(etl_run_id).await.unwrap();
    assert_eq!(rows.player_ids, ["etl-a", "etl-b"]);
    assert_eq!(rows.columns, NUMERIC_FEATURES);
    assert_eq!(rows.values.len(), 2 * NUMERIC_FEATURES.len());
    let monetary = NUMERIC_FEATURES
        .iter()
        .position(|name| *name == "monetary")
        .unwrap();
    let bet_count = NUMERIC_FEATURES
        .iter()
        .position(|name| *name == "bet_count")
        .unwrap();
    assert_eq!(rows.values[monetary], 100.0);
    assert_eq!(rows.values[NUMERIC_FEATURES.len() + monetary], 5.0);
    assert_eq!(rows.values[bet_count], 3.0);

    let request = NewTrainingRun {
        algorithm: "kmeans".to_owned(),
        k: 2,
        seed: u64::MAX,
        activate: true,
        created_by: Some("test".to_owned()),
    };
    let abandoned = store.start_training_run(request.clone()).await.unwrap();
    let busy = store.start_training_run(request.clone()).await.unwrap_err();
    assert!(
        busy.to_string()
            .contains(&format!("training run {abandoned} is still running")),
        "{busy}"
    );
    assert_eq!(store.fail_abandoned_training_runs().await.unwrap(), 1);
    let failed = store.training_run(abandoned).await.unwrap();
    assert_eq!(
        TrainingStatus::parse(&failed.status),
        TrainingStatus::Failed
    );
    assert!(failed.error.unwrap().contains("start it again"));

    let run_id = store.start_training_run(request).await.unwrap();
    assert_eq!(store.training_run(run_id).await.unwrap().seed, -1);
    store
        .record_training_progress(run_id, "fitting", 40.0)
        .await
        .unwrap();
    let running = store.training_run(run_id).await.unwrap();
    assert_eq!((running.stage.as_str(), running.percent), ("fitting", 40.0));

    let previous = store.active_model_id().await.unwrap().unwrap();
    let models_before = store.list_models(None, 100).await.unwrap().len();
    let model = |algorithm: &str| NewModel {
        algorithm: algorithm.to_owned(),
        k: 2,
        parameters: serde_json::json!({ "seed": 1 }),
        transform: serde_json::json!({}),
        centroids: serde_json::json!([[0.0], [1.0]]),
        metrics: serde_json::json!({ "silhouette": 0.5, "cluster_sizes": [1, 1] }),
        feature_names: serde_json::json!(["share_slots"]),
        etl_run_id,
        selection_reason: "test".to_owned(),
    };
    let clusters = || {
        (0..2)
            .map(|label| NewCluster {
                label,
                name: format!("Cluster {label}"),
                description: "a test cluster".to_owned(),
                suggested_campaign: "cashback".to_owned(),
                size: 1,
                share: 0.5,
                profile: serde_json::json!([]),
                centroid: serde_json::json!([f64::from(label)]),
            })
            .collect::<Vec<_>>()
    };
    let segment = |user_id: &str, label: i32| NewSegment {
        user_id: user_id.to_owned(),
        label,
        confidence: 0.75,
        outlier: label == 1,
    };

    // A segment pointing at a label the model lacks: nothing of the model is written.
    let broken = store
        .save_model(
            model("kmeans"),
            clusters(),
            vec![segment("etl-a", 0), segment("etl-b", 7)],
            true,
            None,
        )
        .await
        .unwrap_err();
    assert!(broken.to_string().contains("label 7"), "{broken}");
    assert_eq!(
        store.list_models(None, 100).await.unwrap().len(),
        models_before
    );
    assert_eq!(store.active_model_id().await.unwrap(), Some(previous));

    let saved = store
        .save_model(
            model("kmeans"),
            clusters(),
            vec![segment("etl-a", 0), segment("etl-b", 1)],
            true,
            Some("test".to_owned()),
        )
        .await
        .unwrap();
    assert_eq!(saved.cluster_ids.len(), 2, "{saved:?}");
    let model_id = saved.model_id;
    assert_eq!(store.active_model_id().await.unwrap(), Some(model_id));
    let segment_of_b = store
        .player_segment(model_id, &PlayerId::parse("user_id", "etl-b").unwrap())
        .await
        .unwrap();
    assert!(segment_of_b.outlier);
    assert_eq!(segment_of_b.confidence, 0.75);
    store
        .finish_training_run(run_id, Ok(model_id))
        .await
        .unwrap();
    let finished = store.training_run(run_id).await.unwrap();
    assert_eq!(
        TrainingStatus::parse(&finished.status),
        TrainingStatus::Succeeded
    );
    assert_eq!(
        (finished.model_id, finished.percent),
        (Some(model_id.0), 100.0)
    );

    let listed = store.list_models(None, 100).await.unwrap();
    assert_eq!(listed[0].model.id, model_id.0);
    assert!(listed[0].active);
    assert!(listed[1..].iter().all(|stored| !stored.active));
    let page = store.list_models(Some(model_id.0), 100).await.unwrap();
    assert_eq!(page.len(), listed.len() - 1);

    // An activation queues, in its transaction, the profile updates of the players whose
    // segment (cluster name) changed: here only etl-b, from "Cluster 1" to "Cluster 0".
    let drain = |store: &Store| {
        let store = store.clone();
        async move {
            let claimed = store
                .claim_outbox(
                    CAMPAIGN_DELIVERY_TOPIC,
                    chrono::Utc::now(),
                    chrono::Duration::seconds(60),
                    10_000,
                )
                .await
                .unwrap();
            for message in &claimed {
                store.mark_outbox_published(message.id).await.unwrap();
            }
            claimed
        }
    };
    let initial = drain(store).await;
    assert!(
        !initial.is_empty(),
        "the first activations push every player"
    );
    let changed = store
        .save_model(
            model("kmeans"),
            clusters(),
            vec![segment("etl-a", 0), segment("etl-b", 0)],
            true,
            None,
        )
        .await
        .unwrap();
    let queued = drain(store).await;
    assert_eq!(queued.len(), 1);
    let message: OutboxMessage = serde_json::from_value(queued[0].payload.clone()).unwrap();
    assert_eq!(
        message,
        OutboxMessage::Profiles(ProfileUpdates {
            model_id: changed.model_id.0,
            players: vec![SegmentChange {
                user_id: "etl-b".to_owned(),
                segment: "Cluster 0".to_owned(),
                change_id: None,
            }],
        })
    );
    store.activate_model(changed.model_id, None).await.unwrap();
    assert!(
        drain(store).await.is_empty(),
        "the active model again: no change"
    );

    let reactivated = store.activate_model(previous, None).await.unwrap();
    assert_eq!(reactivated.model.id, previous.0);
    assert_eq!(store.active_model_id().await.unwrap(), Some(previous));
    let missing = store
        .activate_model(crmbet_core::ModelId(999_999), None)
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("not found"), "{missing}");
}

fn refresh_row(account_id: i64, token_hash: &str, family_id: &str) -> NewRefreshToken {
    let issued_at = Utc::now();
    NewRefreshToken {
        account_id,
        token_hash: token_hash.to_owned(),
        family_id: family_id.to_owned(),
        issued_at,
        expires_at: issued_at + chrono::Duration::days(1),
    }
}

async fn check_accounts_and_refresh_tokens(store: &Store) {
    let account = store
        .create_account(NewAccount {
            username: "ana".to_owned(),
            password_hash: "$argon2id$stand-in".to_owned(),
            role: "analyst".to_owned(),
        })
        .await
        .unwrap();
    let duplicate = store
        .create_account(NewAccount {
            username: "ana".to_owned(),
            password_hash: "x".to_owned(),
            role: "admin".to_owned(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(duplicate, crmbet_core::Error::AlreadyExists(_)),
        "{duplicate}"
    );
    assert_eq!(store.count_failed_login(account.id).await.unwrap(), 1);
    assert_eq!(store.count_failed_login(account.id).await.unwrap(), 2);
    store.lock_account(account.id, Utc::now()).await.unwrap();
    store.clear_failed_logins(account.id).await.unwrap();
    let cleared = store.account_by_username("ana").await.unwrap().unwrap();
    assert_eq!((cleared.failed_logins, cleared.locked_until), (0, None));

    // Two concurrent uses of one token: exactly one rotates, the other revokes the family.
    let first = store
        .insert_refresh_token(refresh_row(account.id, "digest-1", "family-a"))
        .await
        .unwrap();
    let (left, right) = tokio::join!(
        store.rotate_refresh_token(first, refresh_row(account.id, "digest-2", "family-a")),
        store.rotate_refresh_token(first, refresh_row(account.id, "digest-3", "family-a")),
    );
    let outcomes = [left.unwrap(), right.unwrap()];
    let rotated = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Rotation::Rotated { .. }))
        .count();
    assert_eq!(rotated, 1, "{outcomes:?}");
    assert!(outcomes.contains(&Rotation::FamilyRevoked), "{outcomes:?}");
    let used = store
        .refresh_token_by_hash("digest-1")
        .await
        .unwrap()
        .unwrap();
    assert!(used.used_at.is_some() && used.replaced_by_id.is_some());
    assert!(used.revoked_at.is_some(), "the reuse revoked the family");
    assert_eq!(store.revoke_refresh_family("family-a").await.unwrap(), 0);

    store
        .record_audit(crmbet_store::AuditEntry {
            actor: "ana".to_owned(),
            role: Some("analyst".to_owned()),
            action: "/crmbet.v1.TrainingService/StartTraining".to_owned(),
            target: Some("training run 1".to_owned()),
            client_ip: Some("203.0.113.5".to_owned()),
            request_id: Some("req-1".to_owned()),
            details: Some(serde_json::json!({ "outcome": "OK" })),
            occurred_at: Utc::now(),
        })
        .await
        .unwrap();
    let audit = store.recent_audit_entries(1).await.unwrap();
    assert_eq!(audit[0].client_ip.as_deref(), Some("203.0.113.5"));
}

/// The race of a logout (or a reuse) revoking a family while a rotation of that family is
/// committing: the rotation's statements run on a connection of their own and hold their
/// commit; the revocation must wait for it and then revoke the replacement too.
#[tokio::test]
async fn a_revocation_racing_a_rotation_leaves_no_token_alive_on_postgres() {
    use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

    let database = ThrowawayPostgres::create("crmbet_refresh_race").await;
    let store = Store::connect(&database.url)
        .await
        .expect("opening PostgreSQL");
    store.migrate_up().await.unwrap();
    let account = store
        .create_account(NewAccount {
            username: "racer".to_owned(),
            password_hash: "$argon2id$stand-in".to_owned(),
            role: "analyst".to_owned(),
        })
        .await
        .unwrap();
    let used = store
        .insert_refresh_token(refresh_row(account.id, "digest-old", "family-race"))
        .await
        .unwrap();

    // The rotation, as Store::rotate_refresh_token writes it, left uncommitted.
    let rotation_connection = sea_orm::Database::connect(&database.url).await.unwrap();
    let rotation = rotation_connection.begin().await.unwrap();
    let claimed = crmbet_store::entity::refresh_tokens::Entity::update_many()
        .col_expr(
            crmbet_store::entity::refresh_tokens::Column::UsedAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(crmbet_store::entity::refresh_tokens::Column::Id.eq(used))
        .exec(&rotation)
        .await
        .unwrap();
    assert_eq!(claimed.rows_affected, 1);
    let replacement = refresh_row(account.id, "digest-new", "family-race");
    crmbet_store::entity::refresh_tokens::Entity::insert(
        crmbet_store::entity::refresh_tokens::ActiveModel {
            account_id: Set(replacement.account_id),
            token_hash: Set(replacement.token_hash),
            family_id: Set(replacement.family_id),
            issued_at: Set(replacement.issued_at),
            expires_at: Set(replacement.expires_at),
            ..Default::default()
        },
    )
    .exec(&rotation)
    .await
    .unwrap();

    let revoking = tokio::spawn({
        let store = store.clone();
        async move { store.revoke_refresh_family("family-race").await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !revoking.is_finished(),
        "the revocation must wait for the rotation holding the family's row"
    );
    rotation.commit().await.unwrap();
    let revoked = revoking.await.unwrap().unwrap();

    let newest = store
        .refresh_token_by_hash("digest-new")
        .await
        .unwrap()
        .unwrap();
    assert!(
        newest.revoked_at.is_some(),
        "the token the racing rotation issued must end revoked ({revoked} revoked)"
    );
    let oldest = store
        .refresh_token_by_hash("digest-old")
        .await
        .unwrap()
        .unwrap();
    assert!(oldest.revoked_at.is_some());
}
