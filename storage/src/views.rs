//! Read models for people and tools: the release list (`GET /api/v1/releases`, `greenlight
//! releases`) and one environment's status (`GET /api/v1/apps/{app}/environments/{env}`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use greenlight_commands::{AppName, ApprovalState, DeploymentState, EnvironmentName, PersonName};
use serde::{Serialize, Serializer};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::approvals::{waiting_approval_request, ApprovalRequest};
use crate::columns::{flag, json, parsed, time, word};
use crate::decisions::approvers;
use crate::deployments::{current_deployment, Deployment, SmokeResult};
use crate::locks::{active_lock, Lock};
use crate::params::numbered;
use crate::releases::{release_columns, Release};
use crate::{Storage, StorageError};

/// The most releases one call returns, whatever the caller asks.
pub const MAX_RELEASES: u32 = 500;

/// Which releases to list, newest first. Unknown names simply match nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReleaseFilter {
    pub app: Option<String>,
    /// Only releases that reached (or wait for) this environment, showing only it.
    pub environment: Option<String>,
    /// Capped at [`MAX_RELEASES`].
    pub limit: u32,
}

/// Where a release stands in one environment: its latest deployment's state, or the approval
/// request's while the gate is closed. Serialized as the SPEC §1 word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvironmentState {
    Deployment(DeploymentState),
    Approval(ApprovalState),
}

impl EnvironmentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment(state) => state.as_str(),
            Self::Approval(state) => state.as_str(),
        }
    }
}

impl Serialize for EnvironmentState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvironmentOutcome {
    pub state: EnvironmentState,
    /// The smoke checks of the latest deployment (empty while waiting for approval).
    pub smoke: Vec<SmokeResult>,
    /// `false` when the deployment shown reached a gated environment without approval.
    pub approved: bool,
    pub deployment_id: Option<i64>,
    pub approval_request_id: Option<i64>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseSummary {
    #[serde(flatten)]
    pub release: Release,
    pub environments: BTreeMap<EnvironmentName, EnvironmentOutcome>,
}

/// The newest releases with, per environment, where each stands.
pub async fn list_releases(
    conn: &mut AnyConnection,
    filter: &ReleaseFilter,
) -> Result<Vec<ReleaseSummary>, StorageError> {
    let releases = release_page(conn, filter).await?;
    if releases.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = releases.iter().map(|release| release.id).collect();
    let mut latest: HashMap<(i64, EnvironmentName), Latest> = HashMap::new();
    for table in [Table::Deployments, Table::Approvals] {
        for row in per_environment_rows(conn, table, &ids, filter.environment.as_deref()).await? {
            let entry = Latest::from_row(table, &row)?;
            let key = (
                row.try_get("release_id")?,
                parsed(&row, "environment", EnvironmentName::parse)?,
            );
            latest.entry(key).or_default().merge(entry);
        }
    }
    let mut by_release: HashMap<i64, BTreeMap<EnvironmentName, EnvironmentOutcome>> =
        HashMap::new();
    for ((release_id, environment), entry) in latest {
        if let Some(outcome) = entry.outcome() {
            by_release
                .entry(release_id)
                .or_default()
                .insert(environment, outcome);
        }
    }
    Ok(releases
        .into_iter()
        .map(|release| ReleaseSummary {
            environments: by_release.remove(&release.id).unwrap_or_default(),
            release,
        })
        .collect())
}

async fn release_page(
    conn: &mut AnyConnection,
    filter: &ReleaseFilter,
) -> Result<Vec<Release>, StorageError> {
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    if let Some(app) = &filter.app {
        values.push(app.as_str());
        conditions.push(format!("app = ${}", values.len()));
    }
    if let Some(environment) = &filter.environment {
        values.push(environment.as_str());
        let n = values.len();
        conditions.push(format!(
            "(EXISTS (SELECT 1 FROM deployments d WHERE d.release_id = r.id AND d.environment = ${n}) \
             OR EXISTS (SELECT 1 FROM approval_requests a WHERE a.release_id = r.id \
             AND a.environment = ${n}))"
        ));
    }
    let condition = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT {} FROM releases r {condition} ORDER BY created_at DESC, id DESC LIMIT ${}",
        release_columns!(),
        values.len() + 1
    );
    let mut query = sqlx::query_as::<_, Release>(&sql);
    for value in values {
        query = query.bind(value);
    }
    Ok(query
        .bind(i64::from(filter.limit.min(MAX_RELEASES)))
        .fetch_all(conn)
        .await?)
}

#[derive(Debug, Clone, Copy)]
enum Table {
    Deployments,
    Approvals,
}

/// Rows of `table` for the given releases, oldest first, so the last one per environment wins.
async fn per_environment_rows(
    conn: &mut AnyConnection,
    table: Table,
    release_ids: &[i64],
    environment: Option<&str>,
) -> Result<Vec<AnyRow>, StorageError> {
    let columns = match table {
        Table::Deployments => {
            "id, release_id, environment, state, smoke, approved, created_at, updated_at \
                               FROM deployments"
        }
        Table::Approvals => {
            "id, release_id, environment, state, created_at, updated_at \
                             FROM approval_requests"
        }
    };
    let environment_condition = match environment {
        Some(_) => format!(" AND environment = ${}", release_ids.len() + 1),
        None => String::new(),
    };
    let sql = format!(
        "SELECT {columns} WHERE release_id IN ({}){environment_condition} ORDER BY id",
        numbered(1, release_ids.len())
    );
    let mut query = sqlx::query(&sql);
    for id in release_ids {
        query = query.bind(*id);
    }
    if let Some(environment) = environment {
        query = query.bind(environment);
    }
    Ok(query.fetch_all(conn).await?)
}

#[derive(Debug, Clone)]
struct Entry {
    id: i64,
    state: EnvironmentState,
    smoke: Vec<SmokeResult>,
    approved: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// The latest deployment and latest approval request of one release in one environment.
#[derive(Debug, Default)]
struct Latest {
    deployment: Option<Entry>,
    approval: Option<Entry>,
}

impl Latest {
    fn from_row(table: Table, row: &AnyRow) -> Result<Self, sqlx::Error> {
        let entry = |state, smoke, approved| -> Result<Entry, sqlx::Error> {
            Ok(Entry {
                id: row.try_get("id")?,
                state,
                smoke,
                approved,
                created_at: time(row, "created_at")?,
                updated_at: time(row, "updated_at")?,
            })
        };
        Ok(match table {
            Table::Deployments => Self {
                deployment: Some(entry(
                    EnvironmentState::Deployment(word(row, "state")?),
                    json(row, "smoke")?,
                    flag(row, "approved")?,
                )?),
                approval: None,
            },
            Table::Approvals => Self {
                deployment: None,
                approval: Some(entry(
                    EnvironmentState::Approval(word(row, "state")?),
                    Vec::new(),
                    true,
                )?),
            },
        })
    }

    fn merge(&mut self, newer: Latest) {
        if newer.deployment.is_some() {
            self.deployment = newer.deployment;
        }
        if newer.approval.is_some() {
            self.approval = newer.approval;
        }
    }

    /// A deployment made after the request (the approved deploy, or a later one) shows its own
    /// state; otherwise the request's state (waiting, rejected, expired...) is the news.
    fn outcome(self) -> Option<EnvironmentOutcome> {
        let deployment_id = self.deployment.as_ref().map(|d| d.id);
        let approval_request_id = self.approval.as_ref().map(|a| a.id);
        let shown = match (self.deployment, self.approval) {
            (Some(deployment), Some(approval)) if approval.created_at > deployment.created_at => {
                approval
            }
            (Some(deployment), _) => deployment,
            (None, Some(approval)) => approval,
            (None, None) => return None,
        };
        Some(EnvironmentOutcome {
            state: shown.state,
            smoke: shown.smoke,
            approved: shown.approved,
            deployment_id,
            approval_request_id,
            updated_at: shown.updated_at,
        })
    }
}

/// One environment at a glance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvironmentStatus {
    pub app: AppName,
    pub environment: EnvironmentName,
    pub current: Option<Deployment>,
    pub pending_approval: Option<PendingApproval>,
    pub lock: Option<Lock>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingApproval {
    #[serde(flatten)]
    pub request: ApprovalRequest,
    /// Distinct people whose approval counts so far.
    pub approvals: Vec<PersonName>,
}

pub async fn environment_status(
    conn: &mut AnyConnection,
    app: &AppName,
    environment: &EnvironmentName,
) -> Result<EnvironmentStatus, StorageError> {
    let current = current_deployment(conn, app, environment).await?;
    let pending_approval = match waiting_approval_request(conn, app, environment).await? {
        Some(request) => Some(PendingApproval {
            approvals: approvers(conn, request.id).await?,
            request,
        }),
        None => None,
    };
    let lock = active_lock(conn, app, environment).await?;
    Ok(EnvironmentStatus {
        app: app.clone(),
        environment: environment.clone(),
        current,
        pending_approval,
        lock,
    })
}

impl Storage {
    /// See [`list_releases`].
    pub async fn list_releases(
        &self,
        filter: &ReleaseFilter,
    ) -> Result<Vec<ReleaseSummary>, StorageError> {
        list_releases(&mut *self.reader().await?, filter).await
    }

    pub async fn environment_status(
        &self,
        app: &AppName,
        environment: &EnvironmentName,
    ) -> Result<EnvironmentStatus, StorageError> {
        environment_status(&mut *self.reader().await?, app, environment).await
    }
}
