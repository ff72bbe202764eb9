//! The kinds and detail keys the release log has always had: the API shows them and tools
//! read them, so a typo here would be a silent break.

use chrono::{TimeZone, Utc};
use greenlight_commands::{
    ApprovalState, DeploymentKind, DeploymentState, EnvironmentName, PersonName,
};
use greenlight_storage::ApprovalSource;

use super::*;

const SHA: &str = "abcdef0123456789abcdef0123456789abcdef01";
const OLD_SHA: &str = "1234567890abcdef1234567890abcdef12345678";

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 6, 12, 30, 0)
        .single()
        .expect("test time")
}

fn app() -> AppName {
    AppName::parse("shop").expect("app")
}

fn production() -> EnvironmentName {
    EnvironmentName::parse("production").expect("environment")
}

fn sha(text: &str) -> CommitSha {
    CommitSha::parse(text).expect("sha")
}

fn release() -> Release {
    Release {
        id: 1,
        app: app(),
        sha: sha(SHA),
        image: format!("ghcr.io/acme/shop:{SHA}"),
        author: None,
        message: None,
        git_ref: Some("main".to_owned()),
        commit_url: None,
        ci_url: None,
        committed_at: None,
        created_at: at(),
    }
}

fn deployment(state: DeploymentState) -> Deployment {
    Deployment {
        id: 7,
        release_id: 1,
        app: app(),
        environment: production(),
        sha: sha(SHA),
        image: format!("ghcr.io/acme/shop:{SHA}"),
        kind: DeploymentKind::Deploy,
        state,
        previous_sha: Some(sha(OLD_SHA)),
        deployer: Some("command".to_owned()),
        deployer_ref: None,
        triggered_by: Some("approval:3".to_owned()),
        smoke: Vec::new(),
        detail: None,
        created_at: at(),
        updated_at: at(),
        healthy_at: None,
        finished_at: None,
        version: 1,
        approved: true,
    }
}

fn request() -> ApprovalRequest {
    ApprovalRequest {
        id: 3,
        release_id: 1,
        app: app(),
        environment: production(),
        sha: sha(SHA),
        state: ApprovalState::Waiting,
        source: ApprovalSource::Ci,
        required_approvals: 1,
        approvals_counted: 0,
        opens_at: at(),
        expires_at: at(),
        next_reminder_at: None,
        outcome_comment: None,
        decided_at: None,
        created_at: at(),
        updated_at: at(),
        version: 1,
        policy_digest: None,
    }
}

fn lock() -> Lock {
    Lock {
        id: 1,
        app: app(),
        environment: production(),
        locked_by: GREENLIGHT.to_owned(),
        reason: "rollback to abcdef0 failed".to_owned(),
        automatic: true,
        locked_at: at(),
        released_at: None,
        released_by: None,
    }
}

fn gate() -> GithubGate {
    GithubGate {
        id: 5,
        app: app(),
        environment: production(),
        sha: sha(SHA),
        callback_url: "https://api.github.com/callback".to_owned(),
        installation_id: Some(9),
        github_environment: "Production".to_owned(),
        answer: None,
        comment: None,
        received_at: at(),
        expires_at: at(),
        answered_at: None,
        version: 1,
    }
}

fn run() -> WorkflowRun {
    WorkflowRun {
        workflow: Some("CI".to_owned()),
        workflow_path: None,
        run_id: 11,
        run_number: None,
        run_attempt: None,
        event: None,
        status: None,
        conclusion: None,
        head_sha: sha(SHA),
        head_branch: None,
        html_url: None,
        created_at: None,
        run_started_at: None,
        updated_at: None,
        duration_secs: None,
    }
}

#[test]
fn every_entry_keeps_its_kind_and_detail_keys() {
    let (release, healthy, request, lock, gate, run) = (
        release(),
        deployment(DeploymentState::Healthy),
        request(),
        lock(),
        gate(),
        run(),
    );
    let (superseded, old_sha, shop) =
        (deployment(DeploymentState::Superseded), sha(OLD_SHA), app());
    let refusal = Refusal::SelfReview {
        person: PersonName::parse("alice").expect("person"),
    };
    let command = Command::Help { command: None };
    let target = FlagTarget {
        app: app(),
        environment: production(),
        key: "new_checkout".to_owned(),
        actor: "alice".to_owned(),
        reason: None,
        at: at(),
    };
    let flag = Flag {
        id: 1,
        app: app(),
        environment: production(),
        key: "new_checkout".to_owned(),
        enabled: true,
        rollout: 100,
        updated_by: "alice".to_owned(),
        updated_at: at(),
        version: 1,
    };
    let deployment_keys: &[&str] = &[
        "approved",
        "deployer",
        "deployment_id",
        "detail",
        "image",
        "kind",
        "previous_sha",
        "smoke",
        "triggered_by",
    ];
    let lock_keys: &[&str] = &["automatic", "locked_at", "locked_by", "reason"];
    let request_keys: &[&str] = &[
        "approval_request_id",
        "comment",
        "expires_at",
        "opens_at",
        "state",
    ];
    let cases: Vec<(Entry<'_>, &str, Vec<&str>)> = vec![
        (
            Entry::ReleaseRecorded(&release),
            "release_recorded",
            vec!["image", "ref"],
        ),
        (
            Entry::Deployment {
                deployment: &healthy,
                replaced_by: None,
            },
            "deployment_healthy",
            deployment_keys.to_vec(),
        ),
        (
            Entry::Deployment {
                deployment: &superseded,
                replaced_by: Some(8),
            },
            "deployment_superseded",
            [deployment_keys, &["replaced_by"]].concat(),
        ),
        (
            Entry::UnapprovedDeploy(&healthy),
            "unapproved_deploy",
            vec!["deployment_id", "state"],
        ),
        (
            Entry::DeployOwed {
                request: &request,
                deployment_id: Some(7),
                deployer: CI,
            },
            "deploy_owed",
            vec!["approval_request_id", "deployer", "deployment_id"],
        ),
        (
            Entry::AutoRollback {
                faulty: &healthy,
                rollback_deployment_id: None,
                target_sha: None,
                failed: "smoke check failed: health",
                locked: true,
            },
            "auto_rollback",
            vec![
                "failed",
                "faulty_deployment_id",
                "locked",
                "rollback_deployment_id",
                "target_sha",
            ],
        ),
        (
            Entry::RollbackStarted {
                rollback: &healthy,
                from: &old_sha,
            },
            "rollback_started",
            vec!["deployment_id", "from", "image", "to"],
        ),
        (
            Entry::Locked {
                lock: &lock,
                sha: None,
            },
            "locked",
            lock_keys.to_vec(),
        ),
        (Entry::Unlocked(&lock), "unlocked", lock_keys.to_vec()),
        (
            Entry::ApprovalRequested(&request),
            "approval_requested",
            request_keys.to_vec(),
        ),
        (
            Entry::ApprovalSuperseded(&request),
            "approval_superseded",
            request_keys.to_vec(),
        ),
        (
            Entry::DeployHeld {
                request: &request,
                lock_reason: "incident",
            },
            "deploy_held",
            vec!["approval_request_id", "lock"],
        ),
        (
            Entry::DecisionRefused {
                request: &request,
                refusal: &refusal,
            },
            "decision_refused",
            vec!["approval_request_id", "message", "reason"],
        ),
        (
            Entry::CommandRefused {
                command: &command,
                reason: "no".to_owned(),
            },
            "command_refused",
            vec!["command", "reason"],
        ),
        (
            Entry::FlagChanged {
                target: &target,
                flag: &flag,
                created: true,
            },
            "flag_changed",
            vec!["created", "enabled", "key", "reason", "rollout"],
        ),
        (
            Entry::GithubGateRequested {
                gate: &gate,
                github_deployment_id: Some(1),
                event: Some("push"),
            },
            "github_gate_requested",
            vec![
                "event",
                "expires_at",
                "gate_id",
                "github_deployment_id",
                "github_environment",
                "installation_id",
            ],
        ),
        (
            Entry::GithubGateAnswered {
                gate: &gate,
                answer: GateAnswer::Rejected,
                comment: "expired",
            },
            "github_gate_answered",
            vec!["comment", "gate_id", "state"],
        ),
        (
            Entry::WorkflowRunCompleted {
                app: &shop,
                run: &run,
            },
            "workflow_run_completed",
            vec![
                "conclusion",
                "created_at",
                "duration_secs",
                "event",
                "head_branch",
                "head_sha",
                "html_url",
                "run_attempt",
                "run_id",
                "run_number",
                "run_started_at",
                "status",
                "updated_at",
                "workflow",
                "workflow_path",
            ],
        ),
    ];
    for (entry, kind, keys) in cases {
        let new = entry.to_new(GREENLIGHT, at());
        assert_eq!(new.kind, kind);
        let mut found: Vec<&str> = new
            .detail
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        found.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(found, keys, "{kind}");
    }
}

#[test]
fn a_rollback_is_logged_against_the_release_it_replaces() {
    let rollback = deployment(DeploymentState::Deploying);
    let from = sha(OLD_SHA);
    let entry = Entry::RollbackStarted {
        rollback: &rollback,
        from: &from,
    };
    let new = entry.to_new("alice", at());
    assert_eq!(new.sha, Some(from.clone()));
    assert_eq!(new.detail["from"], OLD_SHA);
    assert_eq!(new.detail["to"], SHA);
}

#[test]
fn accounts_are_named_by_platform_and_id() {
    assert_eq!(platform_user(Platform::Slack, "U0123"), "slack:U0123");
    assert_eq!(platform_user(Platform::Github, "octocat"), "github:octocat");
}
