//! Several statements sent together. On SQLite they go to the connection's thread as one
//! command, so a batch's reads cost one hand-off between threads rather than one per statement
//! (SPEC §13: decisions at write speed). PostgreSQL's protocol takes one statement with values
//! at a time, so there they run one after another; the results are the same.

use futures::TryStreamExt;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, AnyConnection, Arguments, Either, Encode, Type};

use crate::columns::dialect;
use crate::{Backend, StorageError};

/// Statements to run in order, each with its values.
pub(crate) struct Script<'q> {
    statements: Statements<'q>,
}

enum Statements<'q> {
    /// SQLite: one text, and one list of values that every statement's placeholders number
    /// into.
    Joined {
        sql: String,
        args: AnyArguments<'q>,
        count: usize,
    },
    /// PostgreSQL: each statement with its own values.
    Apart(Vec<(String, AnyArguments<'q>)>),
}

/// Where a statement's rows are among the script's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Part(usize);

/// Binds a statement's values and names their placeholders.
pub(crate) struct Values<'a, 'q> {
    args: &'a mut AnyArguments<'q>,
    error: Option<sqlx::error::BoxDynError>,
}

impl<'q> Values<'_, 'q> {
    /// Binds `value` and returns its placeholder, e.g. `$3`.
    pub(crate) fn bind<T>(&mut self, value: T) -> String
    where
        T: 'q + Encode<'q, Any> + Type<Any>,
    {
        if let Err(error) = self.args.add(value) {
            self.error.get_or_insert(error);
        }
        format!("${}", self.args.len())
    }
}

/// Each statement's rows, in the order they were pushed.
pub(crate) struct Results(Vec<Vec<AnyRow>>);

impl Results {
    /// The rows of the statement `part` names (once; a second take finds none).
    pub(crate) fn take(&mut self, part: Part) -> Vec<AnyRow> {
        self.0
            .get_mut(part.0)
            .map(std::mem::take)
            .unwrap_or_default()
    }
}

impl<'q> Script<'q> {
    pub(crate) fn new(conn: &AnyConnection) -> Self {
        let statements = match dialect(conn) {
            Backend::Sqlite => Statements::Joined {
                sql: String::new(),
                args: AnyArguments::default(),
                count: 0,
            },
            Backend::Postgres => Statements::Apart(Vec::new()),
        };
        Self { statements }
    }

    /// The database the script is for, where its statements must differ.
    pub(crate) fn backend(&self) -> Backend {
        match self.statements {
            Statements::Joined { .. } => Backend::Sqlite,
            Statements::Apart(_) => Backend::Postgres,
        }
    }

    /// Adds the statement `build` writes, binding its values as it names their placeholders.
    pub(crate) fn push(
        &mut self,
        build: impl FnOnce(&mut Values<'_, 'q>) -> String,
    ) -> Result<Part, StorageError> {
        match &mut self.statements {
            Statements::Joined { sql, args, count } => {
                let text = written(args, build)?;
                if !sql.is_empty() {
                    sql.push_str(";\n");
                }
                sql.push_str(&text);
                *count += 1;
                Ok(Part(*count - 1))
            }
            Statements::Apart(statements) => {
                let mut args = AnyArguments::default();
                let text = written(&mut args, build)?;
                statements.push((text, args));
                Ok(Part(statements.len() - 1))
            }
        }
    }

    /// Runs the statements in order; the first that fails stops the rest.
    pub(crate) async fn run(self, conn: &mut AnyConnection) -> Result<Results, StorageError> {
        self.run_between(None, None, conn).await
    }

    /// Runs `first`, the statements, then `last` unless one of them failed: `first` and
    /// `last` are statements without values or rows (the `BEGIN` and `COMMIT` of a
    /// transaction), on SQLite sent in the same hand-off as the statements.
    pub(crate) async fn run_between(
        self,
        first: Option<&str>,
        last: Option<&str>,
        conn: &mut AnyConnection,
    ) -> Result<Results, StorageError> {
        match self.statements {
            Statements::Joined { count: 0, .. } => {
                for statement in first.into_iter().chain(last) {
                    sqlx::query(statement).execute(&mut *conn).await?;
                }
                Ok(Results(Vec::new()))
            }
            Statements::Joined {
                mut sql,
                args,
                count,
            } => {
                if let Some(first) = first {
                    sql.insert_str(0, &format!("{first};\n"));
                }
                if let Some(last) = last {
                    sql.push_str(&format!(";\n{last}"));
                }
                let sent = count + usize::from(first.is_some()) + usize::from(last.is_some());
                let mut results = vec![Vec::new()];
                // sqlx 0.8 deprecates several statements in one prepared query
                // (launchbadge/sqlx#3108) without removing it; should a later sqlx drop it,
                // `Statements::Apart` gives the same results one hand-off per statement, and
                // the conformance tests of the batch reads say so at once.
                #[allow(deprecated)]
                let mut stream = sqlx::query_with(&sql, args).fetch_many(&mut *conn);
                while let Some(item) = stream.try_next().await? {
                    match item {
                        // Each statement ends with its result, after its rows.
                        Either::Left(_) => results.push(Vec::new()),
                        Either::Right(row) => results.last_mut().expect("one open").push(row),
                    }
                }
                if results.len() != sent + 1 {
                    return Err(StorageError::invalid(
                        "script",
                        format!("{sent} statements gave {} results", results.len() - 1),
                    ));
                }
                if first.is_some() {
                    results.remove(0);
                }
                results.truncate(count);
                Ok(Results(results))
            }
            Statements::Apart(statements) => {
                if let Some(first) = first {
                    sqlx::query(first).execute(&mut *conn).await?;
                }
                let mut results = Vec::with_capacity(statements.len());
                for (sql, args) in statements {
                    results.push(sqlx::query_with(&sql, args).fetch_all(&mut *conn).await?);
                }
                if let Some(last) = last {
                    sqlx::query(last).execute(&mut *conn).await?;
                }
                Ok(Results(results))
            }
        }
    }
}

fn written<'q>(
    args: &mut AnyArguments<'q>,
    build: impl FnOnce(&mut Values<'_, 'q>) -> String,
) -> Result<String, StorageError> {
    let mut values = Values { args, error: None };
    let text = build(&mut values);
    match values.error {
        Some(error) => Err(StorageError::invalid("value", error.to_string())),
        None => Ok(text),
    }
}
