-- Several replicas on one database (SPEC §11). Each running `greenlight serve` keeps a row here
-- alive: it pushes `alive_until` one lease ahead, every third of a lease. A replica whose row
-- lapsed is dead, and what it held is taken over: its outbox items by their own leases, its
-- command deploys by being marked interrupted.
CREATE TABLE replicas (
    name        TEXT   PRIMARY KEY,
    started_at  BIGINT NOT NULL,
    alive_until BIGINT NOT NULL
);

-- Which replica runs a command deploy, written in the same write that marks it started: the
-- command is a child process of that replica and of no other.
CREATE TABLE command_runs (
    deployment_id BIGINT PRIMARY KEY REFERENCES deployments (id),
    replica       TEXT   NOT NULL,
    started_at    BIGINT NOT NULL
);

-- A live worker renews the leases of the items it holds (few at a time) while it delivers.
CREATE INDEX outbox_leased ON outbox (leased_by) WHERE leased_by IS NOT NULL;
