//! A migrated SQLite database in a folder of the test's own, removed with it, holding one
//! account.

use crmbet_app::create_account;
use crmbet_server::auth::Role;
use crmbet_store::Store;

pub struct ScratchDatabase {
    pub url: String,
    pub store: Store,
    _directory: tempfile::TempDir,
}

impl ScratchDatabase {
    /// Creates and migrates the database and adds the account `username` with `role` and
    /// `password`.
    pub async fn with_account(username: &str, role: Role, password: &str) -> Self {
        let directory = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            directory.path().join("crmbet.db").display()
        );
        let store = Store::connect(&url).await.unwrap();
        store.migrate_up().await.unwrap();
        create_account(&store, username, role, password, "test")
            .await
            .unwrap();
        Self {
            url,
            store,
            _directory: directory,
        }
    }
}
