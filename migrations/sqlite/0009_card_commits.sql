-- The commits between what ran in the environment and the release, as GitHub's compare API
-- listed them for an approval card (SPEC §14, "Card context"): at most the lines the card
-- shows, and how many there were in all. Fetched once per request through the outbox; the
-- card shows them only while `base_sha` still runs there.
CREATE TABLE card_commits (
    request_id    BIGINT NOT NULL PRIMARY KEY REFERENCES approval_requests (id),
    base_sha      TEXT   NOT NULL,
    total_commits BIGINT NOT NULL CHECK (total_commits >= 0),
    commits       TEXT   NOT NULL,  -- JSON: [{"sha", "author", "title"}], oldest first
    fetched_at    BIGINT NOT NULL
);
