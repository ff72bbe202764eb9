-- One counter per environment, bumped in the write that changes any of its flags: every
-- replica notices a change with one small query (SPEC §11), and flag answers carry an ETag
-- from it. An environment without a row has never had a flag.
CREATE TABLE flag_versions (
    app         TEXT   NOT NULL,
    environment TEXT   NOT NULL,
    version     BIGINT NOT NULL CHECK (version > 0),
    PRIMARY KEY (app, environment)
);
INSERT INTO flag_versions (app, environment, version)
SELECT app, environment, 1 FROM flags GROUP BY app, environment;
