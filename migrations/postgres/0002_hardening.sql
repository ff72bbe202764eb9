-- SPEC §10: a deployment to a gated environment that Greenlight did not approve is recorded
-- with approved = 0. It is never a rollback target. 1 for everything else (including every
-- deployment to an environment without a gate).
ALTER TABLE deployments ADD COLUMN approved BIGINT NOT NULL DEFAULT 1 CHECK (approved IN (0, 1));

-- /api/v1/status proves the database takes writes (a full disk still answers reads): one row,
-- rewritten by each probe.
CREATE TABLE health_probes (
    id         BIGINT PRIMARY KEY,
    checked_at BIGINT NOT NULL
);
