//! Gauges of the database's state, read at scrape time: the outbox backlog and how long
//! its oldest message has waited, the latest ETL run, the active model, the latest
//! training run.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::Mutex;

use crmbet_store::{OperationalSnapshot, Store};

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Debug)]
pub(super) struct DatabaseGauges {
    /// When the gauges were last read; one reader at a time, the others reuse its reading.
    read_at: Mutex<Option<Instant>>,
    up: FloatGauge,
    outbox_pending: FloatGauge,
    outbox_lag: FloatGauge,
    etl_rows_read: FloatGauge,
    etl_rows_loaded: FloatGauge,
    etl_rows_quarantined: FloatGauge,
    etl_quality: FloatGauge,
    etl_duration: FloatGauge,
    etl_finished: FloatGauge,
    model_age: FloatGauge,
    model_silhouette: FloatGauge,
    model_clusters: FloatGauge,
    training_duration: FloatGauge,
    training_succeeded: FloatGauge,
}

fn registered(registry: &mut Registry, name: &str, help: &str) -> FloatGauge {
    let gauge = FloatGauge::default();
    registry.register(name, help, gauge.clone());
    gauge
}

fn seconds_between(start: DateTime<Utc>, end: DateTime<Utc>) -> f64 {
    (end - start).num_milliseconds() as f64 / 1000.0
}

impl DatabaseGauges {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let mut gauge = |name: &str, help: &str| registered(registry, name, help);
        Self {
            read_at: Mutex::new(None),
            up: gauge(
                "database_up",
                "1 when the last reading of the database's state worked",
            ),
            outbox_pending: gauge(
                "outbox_pending_messages",
                "Outbox messages not yet published to the broker or Smartico",
            ),
            outbox_lag: gauge(
                "outbox_delivery_lag_seconds",
                "Age of the oldest unpublished outbox message (0 when none waits)",
            ),
            etl_rows_read: gauge("etl_last_run_rows_read", "Rows the latest ETL run read"),
            etl_rows_loaded: gauge(
                "etl_last_run_rows_loaded",
                "Rows the latest ETL run accepted",
            ),
            etl_rows_quarantined: gauge(
                "etl_last_run_rows_quarantined",
                "Rows the latest ETL run quarantined",
            ),
            etl_quality: gauge(
                "etl_last_run_quality_score",
                "Data quality score of the latest ETL run, 0 to 1",
            ),
            etl_duration: gauge(
                "etl_last_run_duration_seconds",
                "Wall time of the latest ETL run",
            ),
            etl_finished: gauge(
                "etl_last_run_finished_timestamp_seconds",
                "When the latest ETL run finished, Unix seconds",
            ),
            model_age: gauge(
                "model_active_age_seconds",
                "Time since the active model was trained",
            ),
            model_silhouette: gauge(
                "model_active_silhouette",
                "Silhouette score of the active model",
            ),
            model_clusters: gauge("model_active_clusters", "Clusters of the active model"),
            training_duration: gauge(
                "training_last_run_duration_seconds",
                "Wall time of the latest finished training run",
            ),
            training_succeeded: gauge(
                "training_last_run_succeeded",
                "1 when the latest finished training run succeeded",
            ),
        }
    }

    /// Reads the database again unless a reading younger than `ttl` exists.
    pub(super) async fn refresh(&self, store: &Store, ttl: Duration) {
        let mut read_at = self.read_at.lock().await;
        if read_at.is_some_and(|at| at.elapsed() < ttl) {
            return;
        }
        match store.operational_snapshot().await {
            Ok(snapshot) => {
                self.up.set(1.0);
                self.show(&snapshot, Utc::now());
            }
            Err(error) => {
                tracing::warn!(%error, "metrics: the database's state could not be read");
                self.up.set(0.0);
            }
        }
        *read_at = Some(Instant::now());
    }

    fn show(&self, snapshot: &OperationalSnapshot, now: DateTime<Utc>) {
        self.outbox_pending.set(snapshot.outbox_pending as f64);
        self.outbox_lag.set(
            snapshot
                .outbox_oldest_pending_at
                .map_or(0.0, |since| seconds_between(since, now).max(0.0)),
        );
        if let Some(run) = &snapshot.latest_etl_run {
            self.etl_rows_read.set(run.rows_read as f64);
            self.etl_rows_loaded.set(run.rows_loaded as f64);
            self.etl_rows_quarantined.set(run.rows_quarantined as f64);
            self.etl_quality.set(run.quality_score.unwrap_or(0.0));
            if let Some(finished_at) = run.finished_at {
                self.etl_duration
                    .set(seconds_between(run.started_at, finished_at));
                self.etl_finished
                    .set(finished_at.timestamp_millis() as f64 / 1000.0);
            }
        }
        if let Some(model) = &snapshot.active_model {
            self.model_age
                .set(seconds_between(model.created_at, now).max(0.0));
            let silhouette = model
                .metrics
                .get("silhouette")
                .and_then(serde_json::Value::as_f64);
            self.model_silhouette.set(silhouette.unwrap_or(f64::NAN));
            self.model_clusters.set(f64::from(model.k));
        }
        if let Some(run) = &snapshot.latest_finished_training
            && let Some(finished_at) = run.finished_at
        {
            self.training_duration
                .set(seconds_between(run.started_at, finished_at));
            self.training_succeeded
                .set(if run.status == "succeeded" { 1.0 } else { 0.0 });
        }
    }
}
