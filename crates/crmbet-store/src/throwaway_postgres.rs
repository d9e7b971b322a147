//! A PostgreSQL database of a test's own, for tests that need the real server.

use rand::Rng;
use sea_orm::{ConnectionTrait, Database};

/// Where the tests find PostgreSQL unless `CRMBET_TEST_POSTGRES_URL` says otherwise.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A freshly created database on the test server, dropped when this value is, also when
/// the test fails and unwinds.
#[derive(Debug)]
pub struct ThrowawayPostgres {
    admin_url: String,
    name: String,
    /// The new database's URL.
    pub url: String,
}

impl ThrowawayPostgres {
    /// Creates an empty database named `{prefix}_{random}` on the server of
    /// `CRMBET_TEST_POSTGRES_URL`; panics with what to do when the server cannot be reached.
    pub async fn create(prefix: &str) -> Self {
        let admin_url = std::env::var("CRMBET_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let admin = Database::connect(&admin_url).await.unwrap_or_else(|error| {
            panic!(
                "PostgreSQL is required and is not reachable at {admin_url}: {error}; start it \
                 (scripts/test.sh does) or set CRMBET_TEST_POSTGRES_URL"
            )
        });
        let name = format!("{prefix}_{:016x}", rand::rng().random::<u64>());
        if let Err(error) = admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
        {
            panic!("creating the test database {name}: {error}");
        }
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Self {
            admin_url,
            name,
            url,
        }
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop cannot await, and may run on a runtime's own thread: a thread of its own
        // with a small runtime drops the database and is waited for.
        let dropping = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime.block_on(async {
                let admin = Database::connect(&admin_url)
                    .await
                    .map_err(|error| error.to_string())?;
                admin
                    .execute_unprepared(&statement)
                    .await
                    .map_err(|error| error.to_string())?;
                Ok::<_, String>(())
            })
        });
        match dropping.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("could not drop the test database {}: {error}", self.name),
            Err(_) => eprintln!("dropping the test database {} panicked", self.name),
        }
    }
}
