-- SPEC §13's hot paths.
--
-- Card edits coalesce: before adding an edit, the engine looks for the same edit still waiting
-- (same kind and payload). Indexed by kind alone, that look-up read every waiting item of the
-- kind, so with many cards waiting out a rate limit each click cost more.
DROP INDEX outbox_pending_by_kind;
CREATE INDEX outbox_pending_by_payload ON outbox (kind, payload, id) WHERE state = 'pending';

-- Review policies stored once per distinct text, by its SHA-256 (hex). With a 20,000-person
-- group a policy is hundreds of KB; kept in the request's row, every click's update of the
-- row's counters rewrote it, and every request held its own copy. A request opened from now
-- on names its policy by `policy_digest` and keeps '' in `policy`; older requests keep their
-- text there, and `policy_digest` NULL.
CREATE TABLE review_policies (
    digest TEXT NOT NULL PRIMARY KEY,
    policy TEXT NOT NULL
);
ALTER TABLE approval_requests ADD COLUMN policy_digest TEXT REFERENCES review_policies (digest);
