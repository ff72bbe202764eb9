-- DORA metrics (SPEC §14; PostgreSQL dialect, sqlite/ has the same stem) read deployments by
-- when they finished, and need to know which ones turned faulty: that state is final but not
-- last (a rollback or a newer deploy moves the deployment on to rolled_back or superseded),
-- so the moment is kept like healthy_at.
ALTER TABLE deployments ADD COLUMN faulty_at BIGINT;
UPDATE deployments SET faulty_at = finished_at WHERE state = 'faulty';
-- Faulty deployments already moved on: the release log holds the moment they turned faulty.
UPDATE deployments SET faulty_at = (
    SELECT MIN(a.occurred_at) FROM audit_log a
    WHERE a.app = deployments.app AND a.environment = deployments.environment
      AND a.kind = 'deployment_faulty'
      AND a.detail::jsonb ->> 'deployment_id' = deployments.id::TEXT
) WHERE faulty_at IS NULL AND healthy_at IS NULL AND state IN ('rolled_back', 'superseded');

-- The window of a DORA query: an environment's deployments by the time they finished, with
-- what each measure reads of them, so the window is read from the index alone.
CREATE INDEX deployments_finished ON deployments
    (app, environment, finished_at, kind, state, healthy_at, faulty_at, release_id);
-- Time to restore: the first deployment healthy after a failure, one index look-up each.
CREATE INDEX deployments_healthy ON deployments (app, environment, healthy_at)
    WHERE healthy_at IS NOT NULL;
-- Change failure rate: was this deployment replaced by a rollback?
CREATE INDEX deployments_rollbacks ON deployments (app, environment, previous_sha)
    WHERE kind = 'rollback';
