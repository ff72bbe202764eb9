//! A write's connection before its transaction is open. On SQLite each statement is a hand-off
//! to the connection's thread and back, and under load those hand-offs, not the statements,
//! are most of a write's time: a write that starts with a [`Script`] sends its transaction's
//! `BEGIN` along with it, one hand-off less per write (SPEC §13: decisions at write speed).
//!
//! The connection is only reachable through [`Opening::begin`] or [`Opening::run`], both of
//! which open the transaction first, so no statement of the write can run outside it. Likewise
//! a write alone in its transaction may end it with its last statements ([`Open::finish`]):
//! its `COMMIT` goes with them.

use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::AnyConnection;

use crate::script::{Results, Script};
use crate::StorageError;

/// How far a write got with a transaction its writer left it to open and end.
#[derive(Debug, Default)]
pub(crate) struct Ends {
    /// The `BEGIN` was sent (it may have failed): the transaction is to be ended.
    pub(crate) begun: AtomicBool,
    /// The write's last statements and the `COMMIT` after them succeeded: nothing is left
    /// to end.
    pub(crate) committed: AtomicBool,
}

/// What the writer leaves to a write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Left {
    /// The statement that opens the transaction; `None` when the transaction (or the
    /// savepoint of this write) was opened before the write began.
    pub(crate) begin: Option<&'static str>,
    /// The statement that ends it after the write's last statements, if the write may.
    pub(crate) commit: Option<&'static str>,
}

impl Left {
    /// Nothing: the caller opens and ends the transaction.
    pub(crate) const NOTHING: Self = Self {
        begin: None,
        commit: None,
    };
}

/// The connection of a write whose transaction may not be open yet.
pub struct Opening<'c> {
    conn: &'c mut AnyConnection,
    left: Left,
    ends: &'c Ends,
}

impl<'c> Opening<'c> {
    /// For a write that is `left` to open (and maybe end) its transaction; `ends` tells the
    /// caller how far it got.
    pub(crate) fn new(conn: &'c mut AnyConnection, left: Left, ends: &'c Ends) -> Self {
        Self { conn, left, ends }
    }

    /// Opens the transaction (if it is not yet) and hands over the connection, for a write
    /// that does not start with a script; its transaction is ended by the caller.
    pub async fn begin(self) -> Result<&'c mut AnyConnection, StorageError> {
        if let Some(begin) = self.left.begin {
            self.ends.begun.store(true, Ordering::Release);
            sqlx::query(begin).execute(&mut *self.conn).await?;
        }
        Ok(self.conn)
    }

    /// Runs `script` as the write's first statements, in the same hand-off as the `BEGIN`
    /// that opens its transaction, and hands over the open transaction for the rest.
    pub(crate) async fn run(self, script: Script<'_>) -> Result<(Results, Open<'c>), StorageError> {
        if self.left.begin.is_some() {
            self.ends.begun.store(true, Ordering::Release);
        }
        let results = script
            .run_between(self.left.begin, None, &mut *self.conn)
            .await?;
        let open = Open {
            conn: self.conn,
            commit: self.left.commit,
            ends: self.ends,
        };
        Ok((results, open))
    }

    /// A script for this write's database.
    pub(crate) fn script<'q>(&self) -> Script<'q> {
        Script::new(self.conn)
    }
}

/// A write's open transaction.
pub struct Open<'c> {
    conn: &'c mut AnyConnection,
    /// The `COMMIT` the write may send after its last statements.
    commit: Option<&'static str>,
    ends: &'c Ends,
}

impl<'c> Open<'c> {
    /// A script for this write's database.
    pub(crate) fn script<'q>(&self) -> Script<'q> {
        Script::new(self.conn)
    }

    /// The connection, for the write's statements before its last ones.
    pub fn conn(&mut self) -> &mut AnyConnection {
        self.conn
    }

    /// Runs `script` as the write's last statements: with the `COMMIT` after them when the
    /// write is alone in its transaction, so it is committed when this returns `Ok`. The
    /// write must then return `Ok` too: nothing can take it back.
    pub(crate) async fn finish(self, script: Script<'_>) -> Result<Results, StorageError> {
        let results = script.run_between(None, self.commit, self.conn).await?;
        if self.commit.is_some() {
            self.ends.committed.store(true, Ordering::Release);
        }
        Ok(results)
    }
}
