//! Typed columns: how Rust values map to the portable SQL types the `Any` driver can carry.
//!
//! The `Any` driver only moves integers, floats, text and blobs, so times are BIGINT unix epoch
//! milliseconds (UTC), JSON is TEXT, state words are TEXT and booleans are BIGINT 0/1.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::{Backend, StorageError};

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

pub(crate) fn millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

fn decode_error(column: &str, source: impl Into<BoxError>) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: source.into(),
    }
}

fn from_millis(column: &str, value: i64) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::from_timestamp_millis(value)
        .ok_or_else(|| decode_error(column, format!("{value} ms is out of range for a time")))
}

pub(crate) fn time(row: &AnyRow, column: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    from_millis(column, row.try_get(column)?)
}

pub(crate) fn opt_time(row: &AnyRow, column: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    row.try_get::<Option<i64>, _>(column)?
        .map(|value| from_millis(column, value))
        .transpose()
}

/// A state word or other `FromStr` value stored as TEXT.
pub(crate) fn word<T>(row: &AnyRow, column: &str) -> Result<T, sqlx::Error>
where
    T: FromStr,
    T::Err: Into<BoxError>,
{
    let text: String = row.try_get(column)?;
    text.parse().map_err(|e: T::Err| decode_error(column, e))
}

pub(crate) fn opt_word<T>(row: &AnyRow, column: &str) -> Result<Option<T>, sqlx::Error>
where
    T: FromStr,
    T::Err: Into<BoxError>,
{
    row.try_get::<Option<String>, _>(column)?
        .map(|text| text.parse().map_err(|e: T::Err| decode_error(column, e)))
        .transpose()
}

pub(crate) fn json<T: DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T, sqlx::Error> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| decode_error(column, e))
}

pub(crate) fn flag(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

/// A count or other non-negative integer kept in a BIGINT.
pub(crate) fn count(row: &AnyRow, column: &str) -> Result<u32, sqlx::Error> {
    let value: i64 = row.try_get(column)?;
    u32::try_from(value).map_err(|e| decode_error(column, e))
}

pub(crate) fn to_json<T: serde::Serialize>(
    field: &'static str,
    value: &T,
) -> Result<String, StorageError> {
    serde_json::to_string(value).map_err(|e| StorageError::invalid(field, e.to_string()))
}

/// Which SQL dialect a connection speaks, for the few statements that differ.
pub(crate) fn dialect(conn: &AnyConnection) -> Backend {
    if conn.backend_name().eq_ignore_ascii_case("postgresql") {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

/// A domain newtype (`AppName`, `CommitSha`, ...) stored as TEXT, checked again when read.
pub(crate) fn parsed<T, E>(
    row: &AnyRow,
    column: &str,
    parse: fn(&str) -> Result<T, E>,
) -> Result<T, sqlx::Error>
where
    E: Into<BoxError>,
{
    let text: String = row.try_get(column)?;
    parse(&text).map_err(|e| decode_error(column, e))
}

pub(crate) fn opt_parsed<T, E>(
    row: &AnyRow,
    column: &str,
    parse: fn(&str) -> Result<T, E>,
) -> Result<Option<T>, sqlx::Error>
where
    E: Into<BoxError>,
{
    row.try_get::<Option<String>, _>(column)?
        .map(|text| parse(&text).map_err(|e| decode_error(column, e)))
        .transpose()
}
