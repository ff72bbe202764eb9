-- A click must not cost more as approvals pile up (SPEC §13 P1: a 20,000-person group): the
-- request keeps its count of distinct counted approvers, kept by `record_decision` in the
-- decision's own write, and "has this person approved?" is an index look-up.
ALTER TABLE approval_requests ADD COLUMN approvals_counted BIGINT NOT NULL DEFAULT 0;
UPDATE approval_requests SET approvals_counted = (
    SELECT COUNT(DISTINCT d.person) FROM decisions d
    WHERE d.request_id = approval_requests.id AND d.verdict = 'approve'
      AND d.refused_reason IS NULL AND d.person IS NOT NULL
);
CREATE INDEX decisions_counted_approvals ON decisions (request_id, person)
    WHERE verdict = 'approve' AND refused_reason IS NULL;
