-- Claims of an item that ended deferred, not failed: the platform had paused the call (a
-- Retry-After, an exhausted bucket). A deferral gives back the claim's attempt, so pauses never
-- use up an item's retries; attempts + deferrals is the claim number that fences late reports.
ALTER TABLE outbox ADD COLUMN deferrals BIGINT NOT NULL DEFAULT 0;
