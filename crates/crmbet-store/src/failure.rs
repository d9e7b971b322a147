//! How database errors become domain errors.

use crmbet_core::Error;
use sea_orm::DbErr;

/// Maps a sea-orm error: connection trouble is `Unavailable` (retrying may help), the rest
/// is `Internal` (logged in full by the server, hidden from callers).
pub(crate) fn database_error(error: DbErr) -> Error {
    match error {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => {
            Error::Unavailable(format!("database is unreachable: {error}"))
        }
        other => Error::Internal(format!("database: {other}")),
    }
}
