//! DORA metrics (SPEC §14), computed by SQL over one environment's deployments.
//!
//! Definitions, over the deployments to the environment that *finished* in the window:
//! - a deployment is a `deploy` that reached `healthy` or `faulty`; a rollback is a restore,
//!   never a deployment;
//! - lead time: when it turned healthy − the release's `committed_at` (else its build time);
//! - failed: it turned faulty, or it was rolled back, or superseded by a rollback;
//! - time to restore: from turning faulty to the first deployment or rollback healthy in the
//!   environment after it, up to the window's end (a failure not restored yet is no sample).
//!
//! Medians and 90th percentiles interpolate between the two nearest samples, as PostgreSQL's
//! `percentile_cont` does; SQL ranks the samples and picks those two, so one row leaves the
//! database whatever the window holds.
//!
//! Speed (a million releases): the cost follows the deployments in the window, never the size
//! of the log. The window is read once, as a range of `deployments_finished` (which carries
//! every deployment column the measures read), with one release look-up per deployment; each
//! restore is one look-up in `deployments_healthy`, each "superseded by a rollback?" one in
//! `deployments_rollbacks` (migration 0008).

use chrono::{DateTime, Utc};
use greenlight_commands::{AppName, EnvironmentName};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::columns::millis;
use crate::{Storage, StorageError};

/// Whose metrics, over which period (both ends included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoraWindow {
    pub app: AppName,
    pub environment: EnvironmentName,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// The four DORA measures of one window, before any division by its length.
#[derive(Debug, Clone, PartialEq)]
pub struct DoraMetrics {
    /// Deploys that reached healthy or faulty.
    pub deployments: i64,
    /// Those of them that failed: faulty, rolled back, or superseded by a rollback.
    pub failed: i64,
    /// From commit (else build) to healthy, per healthy deployment.
    pub lead_time: Durations,
    /// From faulty to the next healthy deployment or rollback, per restored failure.
    pub time_to_restore: Durations,
}

/// How many durations there were, and their median and 90th percentile in seconds (`None`
/// without samples).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Durations {
    pub samples: i64,
    pub median_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
}

/// The window's deployments: `d` joined to its release `r`. Binds $1 app, $2 environment,
/// $3 from, $4 to (epoch milliseconds).
const DEPLOYMENTS: &str = "FROM deployments d JOIN releases r ON r.id = d.release_id \
     WHERE d.app = $1 AND d.environment = $2 AND d.finished_at >= $3 AND d.finished_at <= $4 \
     AND d.kind = 'deploy' AND (d.healthy_at IS NOT NULL OR d.faulty_at IS NOT NULL)";

/// A deployment `d` (release `r`) counted as a failed change. A rollback away from `r`'s SHA
/// supersedes `d` only if `r` was not deployed there again in between (then it undid that one).
const FAILED: &str = "d.faulty_at IS NOT NULL OR d.state = 'rolled_back' \
     OR (d.state = 'superseded' AND EXISTS (SELECT 1 FROM deployments b \
         WHERE b.app = d.app AND b.environment = d.environment AND b.kind = 'rollback' \
         AND b.previous_sha = r.sha AND b.id > d.id \
         AND NOT EXISTS (SELECT 1 FROM deployments again WHERE again.release_id = d.release_id \
             AND again.environment = d.environment AND again.id > d.id AND again.id < b.id)))";

/// Milliseconds from the release's commit (else its build) to healthy.
const LEAD_TIMES: &str = "d.healthy_at - COALESCE(r.committed_at, r.created_at)";

/// Milliseconds from faulty to the first healthy deployment or rollback at or before $4.
const RESTORE_TIMES: &str = "(SELECT MIN(n.healthy_at) FROM deployments n \
     WHERE n.app = d.app AND n.environment = d.environment AND n.healthy_at IS NOT NULL \
     AND n.healthy_at >= d.faulty_at AND n.healthy_at <= $4) - d.faulty_at";

pub async fn dora_metrics(
    conn: &mut AnyConnection,
    window: &DoraWindow,
) -> Result<DoraMetrics, StorageError> {
    // One pass over the window (materialized once), then each measure from it.
    let sql = format!(
        "WITH w AS MATERIALIZED (SELECT \
           CASE WHEN {FAILED} THEN 1 ELSE 0 END AS failed, \
           CASE WHEN d.healthy_at IS NOT NULL THEN {LEAD_TIMES} END AS lead_ms, \
           CASE WHEN d.faulty_at IS NOT NULL THEN {RESTORE_TIMES} END AS restore_ms \
           {DEPLOYMENTS}), \
         {lead}, {restore} \
         SELECT (SELECT COUNT(*) FROM w) AS deployments, \
           (SELECT COUNT(CASE WHEN failed = 1 THEN 1 END) FROM w) AS failed, \
           l.*, t.* \
         FROM lead_ms_spread l, restore_ms_spread t",
        lead = spread("lead_ms"),
        restore = spread("restore_ms"),
    );
    let row = sqlx::query(&sql)
        .bind(window.app.as_str())
        .bind(window.environment.as_str())
        .bind(millis(window.from))
        .bind(millis(window.to))
        .fetch_one(conn)
        .await?;
    Ok(DoraMetrics {
        deployments: row.try_get("deployments")?,
        failed: row.try_get("failed")?,
        lead_time: durations(&row, "lead_ms")?,
        time_to_restore: durations(&row, "restore_ms")?,
    })
}

/// CTEs ranking column `name` of `w` (NULLs skipped) into `{name}_spread`: one row with the
/// sample count `{name}_n` and the two neighbours of the median's and the 90th percentile's
/// positions, `(n - 1) × p` counted from 0 (all NULL without samples).
fn spread(name: &str) -> String {
    format!(
        "{name}_ranked AS (SELECT {name} AS v, ROW_NUMBER() OVER (ORDER BY {name}) AS rn, \
           (SELECT COUNT({name}) FROM w) AS n FROM w WHERE {name} IS NOT NULL), \
         {name}_spread AS (SELECT MAX(n) AS {name}_n, \
           MAX(CASE WHEN rn = (n - 1) / 2 + 1 THEN v END) AS {name}_median_low, \
           MAX(CASE WHEN rn = n / 2 + 1 THEN v END) AS {name}_median_high, \
           MAX(CASE WHEN rn = (n - 1) * 9 / 10 + 1 THEN v END) AS {name}_p90_low, \
           MAX(CASE WHEN rn = ((n - 1) * 9 + 9) / 10 + 1 THEN v END) AS {name}_p90_high \
           FROM {name}_ranked)"
    )
}

/// The `{name}_…` columns of [`spread`] as seconds; Rust interpolates between neighbours.
fn durations(row: &AnyRow, name: &str) -> Result<Durations, StorageError> {
    let Some(n) = row.try_get::<Option<i64>, _>(format!("{name}_n").as_str())? else {
        return Ok(Durations::default());
    };
    let value = |column: &str| row.try_get::<i64, _>(format!("{name}_{column}").as_str());
    // The position of the 90th percentile is (n - 1) × 0.9: its tenths are the weight of the
    // higher neighbour.
    let p90_weight = ((n - 1) * 9 % 10) as f64 / 10.0;
    Ok(Durations {
        samples: n,
        median_seconds: Some(seconds(value("median_low")?, value("median_high")?, 0.5)),
        p90_seconds: Some(seconds(value("p90_low")?, value("p90_high")?, p90_weight)),
    })
}

/// `low` moved `weight` of the way to `high`, milliseconds to seconds (to the millisecond).
fn seconds(low: i64, high: i64, weight: f64) -> f64 {
    let millis = low as f64 + (high - low) as f64 * weight;
    millis.round() / 1000.0
}

impl Storage {
    /// See [`dora_metrics`].
    pub async fn dora_metrics(&self, window: &DoraWindow) -> Result<DoraMetrics, StorageError> {
        dora_metrics(&mut *self.reader().await?, window).await
    }
}

#[cfg(test)]
mod tests {
    use super::seconds;

    #[test]
    fn interpolation_moves_from_the_low_to_the_high_neighbour() {
        assert_eq!(seconds(1_000, 3_000, 0.5), 2.0);
        assert_eq!(seconds(1_000, 1_000, 0.5), 1.0);
        assert_eq!(seconds(10_000, 20_000, 0.1), 11.0);
        assert_eq!(seconds(1, 2, 0.5), 0.002);
    }
}
