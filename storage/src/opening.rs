//! A write's connection before its transaction is open. On SQLite each statement is a hand-off
//! to the connection's thread and back, and under load those hand-offs, not the statements,
//! are most of a write's time: a write that starts with a [`Script`] sends its transaction's
//! `BEGIN` along with it, one hand-off less per write (SPEC §13: decisions at write speed).
//!
//! The connection is only reachable through [`Opening::begin`] or [`Opening::run`], both of
//! which open the transaction first, so no statement of the write can run outside it.

use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::AnyConnection;

use crate::columns::dialect;
use crate::script::{Results, Script};
use crate::{Backend, StorageError};

/// The connection of a write whose transaction may not be open yet.
pub struct Opening<'c> {
    conn: &'c mut AnyConnection,
    /// The statement that opens the transaction, not sent yet; `None` once sent, or when the
    /// transaction (or the savepoint of this write) was opened before the write began.
    begin: Option<&'static str>,
    /// Set once `begin` has been sent, for the writer to know whether to end a transaction.
    sent: &'c AtomicBool,
}

impl<'c> Opening<'c> {
    /// For a write whose transaction the caller opens with `begin`, sent with the write's
    /// first statements; `sent` tells the caller whether it was.
    pub(crate) fn pending(
        conn: &'c mut AnyConnection,
        begin: &'static str,
        sent: &'c AtomicBool,
    ) -> Self {
        Self {
            conn,
            begin: Some(begin),
            sent,
        }
    }

    /// For a write whose transaction is already open.
    pub(crate) fn open(conn: &'c mut AnyConnection, sent: &'c AtomicBool) -> Self {
        sent.store(true, Ordering::Release);
        Self {
            conn,
            begin: None,
            sent,
        }
    }

    pub fn backend(&self) -> Backend {
        dialect(self.conn)
    }

    /// Opens the transaction (if it is not yet) and hands over the connection, for a write
    /// that does not start with a script.
    pub async fn begin(self) -> Result<&'c mut AnyConnection, StorageError> {
        if let Some(begin) = self.begin {
            self.sent.store(true, Ordering::Release);
            sqlx::query(begin).execute(&mut *self.conn).await?;
        }
        Ok(self.conn)
    }

    /// Runs `script` as the write's first statements, in the same hand-off as the `BEGIN`
    /// that opens its transaction, and hands over the connection for the rest of the write.
    pub(crate) async fn run(
        self,
        script: Script<'_>,
    ) -> Result<(Results, &'c mut AnyConnection), StorageError> {
        if self.begin.is_some() {
            self.sent.store(true, Ordering::Release);
        }
        let results = script.run_after(self.begin, &mut *self.conn).await?;
        Ok((results, self.conn))
    }

    /// A script for this write's database.
    pub(crate) fn script<'q>(&self) -> Script<'q> {
        Script::new(self.conn)
    }
}
