//! Connecting, migrating and checking the database.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crmbet_core::{Error, Result};
use crmbet_migrations::Migrator;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

use crate::failure::database_error;

/// Every table the migrations create.
pub const TABLES: &[&str] = &[
    "etl_runs",
    "players",
    "player_features",
    "quarantine",
    "models",
    "active_model",
    "clusters",
    "player_segments",
    "training_runs",
    "lake_objects",
    "campaigns",
    "campaign_targets",
    "outbox",
    "webhook_events",
    "accounts",
    "refresh_tokens",
    "audit_log",
    "database_identity",
    "player_restrictions",
    "live_transactions",
    "live_player_state",
    "live_player_sessions",
    "live_player_days",
    "live_quarantine",
    "segment_changes",
    "etl_live_watermarks",
    "lake_transaction_ids",
    "webhook_endpoints",
    "webhook_dead_letters",
];

/// Connections of the pool [`Store::connect`] opens.
pub const POOL_MAX_CONNECTIONS: u32 = 16;

/// A handle on the database; cheap to clone (a connection pool inside).
#[derive(Debug, Clone)]
pub struct Store {
    connection: DatabaseConnection,
    /// Where it connected, for [`Store::open_reserved_connection`].
    database_url: Arc<str>,
    /// Models activated through this handle (and its clones), counted after the commit, so
    /// a reader that keeps the active model's id knows at once when it changed here.
    activations: Arc<AtomicU64>,
}

/// How busy the connection pool is, for health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// Connections open now.
    pub open: u32,
    /// Open connections no query holds.
    pub idle: usize,
    /// The most the pool opens.
    pub max: u32,
}

impl PoolUsage {
    /// Every connection open and none idle: the next query waits.
    pub fn saturated(&self) -> bool {
        self.open >= self.max && self.idle == 0
    }
}

/// Applied and pending migrations, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub applied: Vec<String>,
    pub pending: Vec<String>,
}

/// KiB of page cache a SQLite connection keeps once it wrote in bulk.
const BULK_CACHE_KIB: u32 = 64 * 1024;

impl Store {
    /// Connects to `database_url` (`sqlite://…` or `postgres://…`). For SQLite the file's
    /// folder is created, so the embedded default works on a fresh checkout.
    pub async fn connect(database_url: &str) -> Result<Self> {
        create_sqlite_folder(database_url)?;
        let mut options = ConnectOptions::new(database_url.to_owned());
        options
            .max_connections(POOL_MAX_CONNECTIONS)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(5))
            .sqlx_logging(false);
        let connection = Database::connect(options).await.map_err(|error| {
            Error::Unavailable(format!(
                "cannot connect to the database at {}: {error}; check DATABASE_URL",
                redact_password(database_url)
            ))
        })?;
        if connection.get_database_backend() == DbBackend::Sqlite {
            // WAL lets readers go on while the ETL writes; foreign keys are off by default.
            for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA foreign_keys = ON"] {
                connection
                    .execute_unprepared(pragma)
                    .await
                    .map_err(database_error)?;
            }
        }
        Ok(Self {
            connection,
            database_url: Arc::from(database_url),
            activations: Arc::new(AtomicU64::new(0)),
        })
    }

    /// A store of its own over one connection to the same database, for health checks: it
    /// answers while every connection of this store's pool is busy. Opened once by the
    /// caller and kept; it never waits more than a second for its connection.
    pub async fn open_reserved_connection(&self) -> Result<Self> {
        let mut options = ConnectOptions::new(self.database_url.to_string());
        options
            .max_connections(1)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(2))
            .acquire_timeout(Duration::from_secs(1))
            .sqlx_logging(false);
        let connection = Database::connect(options).await.map_err(|error| {
            Error::Unavailable(format!(
                "cannot open the reserved health-check connection to {}: {error}",
                redact_password(&self.database_url)
            ))
        })?;
        Ok(Self {
            connection,
            database_url: Arc::clone(&self.database_url),
            activations: Arc::new(AtomicU64::new(0)),
        })
    }

    /// How busy the connection pool is; `None` for a backend without a pool.
    pub fn pool_usage(&self) -> Option<PoolUsage> {
        let (open, idle) = match self.backend() {
            DbBackend::Postgres => {
                let pool = self.connection.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            DbBackend::Sqlite => {
                let pool = self.connection.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => return None,
        };
        Some(PoolUsage {
            open,
            idle,
            max: POOL_MAX_CONNECTIONS,
        })
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock at `BEGIN`
    /// (IMMEDIATE), so a busy database makes it wait out the busy timeout; a deferred
    /// transaction that reads first fails at once with "database is locked" when another
    /// connection wrote since its read. PostgreSQL ignores the mode.
    pub(crate) async fn begin_write(&self) -> Result<DatabaseTransaction> {
        self.connection
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await
            .map_err(database_error)
    }

    /// [`Store::begin_write`] for a transaction that writes hundreds of thousands of rows:
    /// on SQLite its connection keeps up to [`BULK_CACHE_KIB`] of pages in memory, so the
    /// indexes being filled are not spilled to the WAL and read back (the default is 2 MiB).
    pub(crate) async fn begin_bulk_write(&self) -> Result<DatabaseTransaction> {
        let transaction = self.begin_write().await?;
        if transaction.get_database_backend() == DbBackend::Sqlite {
            transaction
                .execute_unprepared(&format!("PRAGMA cache_size = -{BULK_CACHE_KIB}"))
                .await
                .map_err(database_error)?;
        }
        Ok(transaction)
    }

    /// How many models were activated through this handle since it was opened. Another
    /// process's activations are not counted: read [`Store::active_model_id`] for those.
    pub fn activations(&self) -> u64 {
        self.activations.load(Ordering::Acquire)
    }

    /// Counts an activation whose transaction has committed.
    pub(crate) fn count_activation(&self) {
        self.activations.fetch_add(1, Ordering::AcqRel);
    }

    /// The sea-orm connection of this crate's repositories.
    pub(crate) fn connection(&self) -> &DatabaseConnection {
        &self.connection
    }

    /// Which engine this is.
    pub fn backend(&self) -> DbBackend {
        self.connection.get_database_backend()
    }

    /// Applies every pending migration.
    pub async fn migrate_up(&self) -> Result<()> {
        Migrator::up(&self.connection, None)
            .await
            .map_err(database_error)
    }

    /// Rolls back the latest `steps` migrations.
    pub async fn migrate_down(&self, steps: u32) -> Result<()> {
        Migrator::down(&self.connection, Some(steps))
            .await
            .map_err(database_error)
    }

    /// Which migrations are applied and which are pending.
    pub async fn migration_status(&self) -> Result<MigrationStatus> {
        let applied = Migrator::get_applied_migrations(&self.connection)
            .await
            .map_err(database_error)?
            .into_iter()
            .map(|migration| migration.name().to_owned())
            .collect();
        let pending = Migrator::get_pending_migrations(&self.connection)
            .await
            .map_err(database_error)?
            .into_iter()
            .map(|migration| migration.name().to_owned())
            .collect();
        Ok(MigrationStatus { applied, pending })
    }

    /// Rows per table, for operators' status output and for tests that prove a refused
    /// request changed nothing.
    pub async fn row_counts(&self) -> Result<BTreeMap<&'static str, i64>> {
        let mut counts = BTreeMap::new();
        for table in TABLES {
            let statement = Statement::from_string(
                self.backend(),
                format!("SELECT COUNT(*) AS row_count FROM {table}"),
            );
            let row = self
                .connection
                .query_one_raw(statement)
                .await
                .map_err(database_error)?
                .ok_or_else(|| Error::Internal(format!("counting {table} returned no row")))?;
            let count: i64 = row.try_get("", "row_count").map_err(database_error)?;
            counts.insert(*table, count);
        }
        Ok(counts)
    }

    /// The random id this database got when it was created (migration
    /// `database_identity`): files kept beside the database, such as the ETL's warehouse,
    /// record it so they are never read into another database.
    pub async fn database_id(&self) -> Result<String> {
        let statement = Statement::from_string(
            self.backend(),
            "SELECT database_id FROM database_identity WHERE id = 1",
        );
        let row = self
            .connection
            .query_one_raw(statement)
            .await
            .map_err(database_error)?
            .ok_or_else(|| {
                Error::FailedPrecondition(
                    "the database has no identity row; run `crmbet migrate up`".to_owned(),
                )
            })?;
        row.try_get("", "database_id").map_err(database_error)
    }

    /// A cheap round trip, for health checks.
    pub async fn ping(&self) -> Result<()> {
        self.connection.ping().await.map_err(database_error)
    }
}

fn create_sqlite_folder(database_url: &str) -> Result<()> {
    let Some(rest) = database_url.strip_prefix("sqlite://") else {
        return Ok(());
    };
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    let Some(folder) = Path::new(path).parent() else {
        return Ok(());
    };
    if folder.as_os_str().is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(folder).map_err(|error| {
        Error::Unavailable(format!(
            "cannot create the database folder {}: {error}",
            folder.display()
        ))
    })
}

/// The URL with any password replaced, fit for messages and logs.
pub(crate) fn redact_password(database_url: &str) -> String {
    let Some((scheme, rest)) = database_url.split_once("://") else {
        return database_url.to_owned();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return database_url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => database_url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_password("postgres://crm:secret@db:5432/crm"),
            "postgres://crm:***@db:5432/crm"
        );
        assert_eq!(
            redact_password("sqlite://data/crmbet.db?mode=rwc"),
            "sqlite://data/crmbet.db?mode=rwc"
        );
    }
}
