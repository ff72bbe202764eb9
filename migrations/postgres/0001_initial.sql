-- Greenlight's schema for the whole SPEC (PostgreSQL dialect; sqlite/ has the same stems).
-- Portable types only, because the code reads both dialects through sqlx's Any driver:
-- times are BIGINT unix epoch milliseconds UTC, JSON is TEXT, state words are TEXT with a
-- CHECK listing SPEC §1's words, booleans are BIGINT 0/1.

-- One build of an app (SPEC §1 "Release"). Immutable once inserted.
CREATE TABLE releases (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app          TEXT    NOT NULL,
    sha          TEXT    NOT NULL CHECK (length(sha) = 40),
    image        TEXT    NOT NULL,
    author       TEXT,
    message      TEXT,
    git_ref      TEXT,
    commit_url   TEXT,
    ci_url       TEXT,
    committed_at BIGINT,
    created_at   BIGINT  NOT NULL,
    UNIQUE (app, sha)
);
CREATE INDEX releases_newest ON releases (created_at DESC, id DESC);
CREATE INDEX releases_newest_by_app ON releases (app, created_at DESC, id DESC);

-- A release going to an environment (SPEC §1 "Deployment").
CREATE TABLE deployments (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    release_id   BIGINT  NOT NULL REFERENCES releases (id),
    app          TEXT    NOT NULL,
    environment  TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('deploy', 'rollback')),
    state        TEXT    NOT NULL CHECK (state IN ('pending', 'deploying', 'verifying', 'healthy',
                                                   'faulty', 'failed', 'rolled_back', 'superseded')),
    previous_sha TEXT,
    deployer     TEXT,   -- command, http, github-workflow, github-protection-rule, ci
    deployer_ref TEXT,   -- the deployer's own id: GitHub deployment id, workflow run URL, ...
    triggered_by TEXT,
    smoke        TEXT    NOT NULL DEFAULT '[]',  -- JSON [{name, status, duration_ms, detail}]
    detail       TEXT,   -- why it failed, deploy output (truncated)
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    -- Set when it first became healthy and kept after it is superseded or rolled back:
    -- the rollback target and the wait timer both need "was healthy, and when".
    healthy_at   BIGINT,
    finished_at  BIGINT,
    version      BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX deployments_by_release ON deployments (release_id, environment, id);
CREATE INDEX deployments_by_environment ON deployments (app, environment, id);
CREATE INDEX deployments_unfinished ON deployments (id)
    WHERE state IN ('pending', 'deploying', 'verifying');

-- The gate before a gated environment (SPEC §1 "Approval request").
CREATE TABLE approval_requests (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    release_id         BIGINT  NOT NULL REFERENCES releases (id),
    app                TEXT    NOT NULL,
    environment        TEXT    NOT NULL,
    state              TEXT    NOT NULL CHECK (state IN ('waiting', 'approved', 'rejected',
                                                         'expired', 'superseded', 'cancelled')),
    source             TEXT    NOT NULL CHECK (source IN ('ci', 'github')),
    policy             TEXT    NOT NULL,  -- JSON snapshot of the policy when it opened
    required_approvals BIGINT  NOT NULL CHECK (required_approvals >= 1),
    opens_at           BIGINT  NOT NULL,  -- healthy in the previous environment + wait_timer
    expires_at         BIGINT  NOT NULL,
    next_reminder_at   BIGINT,
    outcome_comment    TEXT,              -- the reject reason, "expired", ...
    decided_at         BIGINT,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    version            BIGINT  NOT NULL DEFAULT 0
);
-- A newer release supersedes the waiting one; two replicas can never both open one.
CREATE UNIQUE INDEX approval_requests_one_waiting ON approval_requests (app, environment)
    WHERE state = 'waiting';
CREATE INDEX approval_requests_by_release ON approval_requests (release_id, environment, id);
CREATE INDEX approval_requests_expiry ON approval_requests (expires_at) WHERE state = 'waiting';
CREATE INDEX approval_requests_reminder ON approval_requests (next_reminder_at)
    WHERE state = 'waiting';

-- One reviewer's click, including refused attempts (SPEC §1 "Decision").
CREATE TABLE decisions (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id     BIGINT  NOT NULL REFERENCES approval_requests (id),
    person         TEXT,            -- NULL: a chat user not in [people]
    platform       TEXT    NOT NULL CHECK (platform IN ('slack', 'discord', 'github', 'cli', 'api')),
    platform_user  TEXT    NOT NULL,
    verdict        TEXT    NOT NULL CHECK (verdict IN ('approve', 'reject')),
    comment        TEXT,
    refused_reason TEXT,            -- NULL unless the attempt was refused
    decided_at     BIGINT  NOT NULL
);
CREATE INDEX decisions_by_request ON decisions (request_id, id);

-- GitHub deployment protection rule callbacks waiting for our answer (SPEC §5.2). Kept apart
-- from approval_requests: GitHub may ask before the request exists, and asks once per job.
CREATE TABLE github_gates (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app                TEXT    NOT NULL,
    environment        TEXT    NOT NULL,
    sha                TEXT    NOT NULL CHECK (length(sha) = 40),
    callback_url       TEXT    NOT NULL UNIQUE,
    installation_id    BIGINT,
    github_environment TEXT    NOT NULL,
    state              TEXT    NOT NULL CHECK (state IN ('waiting', 'answered')),
    answer             TEXT    CHECK (answer IN ('approved', 'rejected')),
    comment            TEXT,
    received_at        BIGINT  NOT NULL,
    expires_at         BIGINT  NOT NULL,
    answered_at        BIGINT,
    version            BIGINT  NOT NULL DEFAULT 0,
    CHECK ((state = 'waiting') = (answer IS NULL))
);
CREATE INDEX github_gates_waiting ON github_gates (app, environment, sha) WHERE state = 'waiting';
CREATE INDEX github_gates_expiry ON github_gates (expires_at) WHERE state = 'waiting';

-- Where a card was posted, so later edits reach the same message on every platform.
CREATE TABLE chat_messages (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    card_key    TEXT    NOT NULL,  -- what the message shows, e.g. 'approval:42'
    platform    TEXT    NOT NULL CHECK (platform IN ('slack', 'discord')),
    channel     TEXT    NOT NULL,
    message_ref TEXT    NOT NULL,  -- Slack ts / Discord message id
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    UNIQUE (card_key, platform, channel)
);

-- /lock and automatic locks after a rollback. Released locks stay as history.
CREATE TABLE locks (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app         TEXT    NOT NULL,
    environment TEXT    NOT NULL,
    locked_by   TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    automatic   BIGINT  NOT NULL DEFAULT 0 CHECK (automatic IN (0, 1)),
    locked_at   BIGINT  NOT NULL,
    released_at BIGINT,
    released_by TEXT
);
CREATE UNIQUE INDEX locks_one_active ON locks (app, environment) WHERE released_at IS NULL;

-- Feature flags per (app, environment, key), read by applications (SPEC §7).
CREATE TABLE flags (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app         TEXT    NOT NULL,
    environment TEXT    NOT NULL,
    key         TEXT    NOT NULL CHECK (length(key) > 0),
    enabled     BIGINT  NOT NULL CHECK (enabled IN (0, 1)),
    rollout     BIGINT  NOT NULL DEFAULT 100 CHECK (rollout BETWEEN 0 AND 100),
    updated_by  TEXT    NOT NULL,
    updated_at  BIGINT  NOT NULL,
    version     BIGINT  NOT NULL DEFAULT 0,
    UNIQUE (app, environment, key)
);

-- Every flag change, with the values after it.
CREATE TABLE flag_changes (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flag_id    BIGINT  NOT NULL REFERENCES flags (id),
    enabled    BIGINT  NOT NULL CHECK (enabled IN (0, 1)),
    rollout    BIGINT  NOT NULL CHECK (rollout BETWEEN 0 AND 100),
    actor      TEXT    NOT NULL,
    reason     TEXT,
    changed_at BIGINT  NOT NULL
);
CREATE INDEX flag_changes_by_flag ON flag_changes (flag_id, id);

-- The release log: append-only history of everything (SPEC §1 "Release log").
CREATE TABLE audit_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at BIGINT  NOT NULL,
    actor       TEXT    NOT NULL,
    app         TEXT,
    environment TEXT,
    sha         TEXT,
    kind        TEXT    NOT NULL,
    detail      TEXT    NOT NULL DEFAULT '{}'  -- JSON object
);
CREATE INDEX audit_log_by_app_environment ON audit_log (app, environment, id);
CREATE INDEX audit_log_by_app ON audit_log (app, id);
CREATE INDEX audit_log_by_environment ON audit_log (environment, id);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Inbound webhook deliveries already processed (GitHub X-GitHub-Delivery, ...).
CREATE TABLE webhook_deliveries (
    source      TEXT    NOT NULL,
    delivery_id TEXT    NOT NULL,
    received_at BIGINT  NOT NULL,
    PRIMARY KEY (source, delivery_id)
);
CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries (received_at);

-- CI events already applied (SPEC §5.1), with the reply to repeat for a duplicate.
CREATE TABLE idempotency_keys (
    key        TEXT    PRIMARY KEY,
    response   TEXT    NOT NULL,  -- JSON
    created_at BIGINT  NOT NULL
);

-- Outgoing effects, written in the same transaction as the state change (SPEC §8).
-- While an item is leased to a worker, next_attempt_at is the lease's end: a crashed worker's
-- item comes due again by itself.
CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL UNIQUE,
    payload         TEXT    NOT NULL,  -- JSON
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    leased_by       TEXT,
    last_error      TEXT,
    created_at      BIGINT  NOT NULL,
    delivered_at    BIGINT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_dead ON outbox (id) WHERE state = 'dead';
