//! The one error type of this crate, shaped so callers can branch on what went wrong.

use std::sync::Arc;

use crate::Backend;

/// Why a storage operation did not happen.
///
/// `NotFound` and `Conflict` are expected outcomes that callers branch on (a lost race between
/// two replicas or two clicks is a `Conflict`); the others are failures.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The row the operation needs does not exist.
    #[error("{what} not found")]
    NotFound { what: String },
    /// The row exists but is no longer in the expected state: someone else acted first.
    #[error("conflict: {what}")]
    Conflict { what: String },
    /// The caller passed a value the database would refuse.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The operation makes no sense on this backend.
    #[error("not supported on {backend}: {hint}")]
    Unsupported { backend: Backend, hint: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The group-commit transaction this write was part of could not be committed, so the write
    /// did not happen. Shared by every write of the batch.
    #[error("the write batch was not committed: {0}")]
    BatchFailed(Arc<sqlx::Error>),
    /// The write closure panicked; its savepoint was rolled back, other writes were unaffected.
    #[error("a storage write panicked")]
    WritePanicked,
    /// `Storage::close` was called (or the writer stopped); nothing more is accepted.
    #[error("storage is closed")]
    Closed,
}

impl StorageError {
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    pub fn conflict(what: impl Into<String>) -> Self {
        Self::Conflict { what: what.into() }
    }

    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// The same failure, for another caller whose work was part of the same write (a batch of
    /// decisions): expected outcomes keep their kind, failures keep their message.
    pub fn for_another_caller(&self) -> Self {
        match self {
            Self::NotFound { what } => Self::NotFound { what: what.clone() },
            Self::Conflict { what } => Self::Conflict { what: what.clone() },
            Self::Invalid { field, reason } => Self::Invalid {
                field,
                reason: reason.clone(),
            },
            Self::Unsupported { backend, hint } => Self::Unsupported {
                backend: *backend,
                hint: hint.clone(),
            },
            Self::BatchFailed(error) => Self::BatchFailed(Arc::clone(error)),
            Self::WritePanicked => Self::WritePanicked,
            Self::Closed => Self::Closed,
            Self::Database(_) | Self::Migrate(_) => {
                Self::Database(sqlx::Error::Protocol(self.to_string()))
            }
        }
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }
}
