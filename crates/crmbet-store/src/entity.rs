//! sea-orm entities, one module per table (see `migrations/`).

pub mod active_model;
pub mod clusters;
pub mod etl_runs;
pub mod lake_objects;
pub mod models;
pub mod player_features;
pub mod player_segments;
pub mod players;
pub mod quarantine;
pub mod training_runs;

pub mod accounts;
pub mod audit_log;
pub mod campaign_targets;
pub mod campaigns;
pub mod outbox;
pub mod player_restrictions;
pub mod refresh_tokens;
pub mod webhook_dead_letters;
pub mod webhook_endpoints;
pub mod webhook_events;
