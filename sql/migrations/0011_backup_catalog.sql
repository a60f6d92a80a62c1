-- The catalogue of database backups the console made (`opsconsole backup run`): one row per
-- object stored in S3, written only after the upload completed, so a failed or interrupted
-- backup is never listed as one. Verification and restore drills add their evidence to the
-- row; prune marks the row when it deletes the object (the row stays: the history of what
-- was kept and for how long is part of the evidence).

CREATE TABLE ops.backup_catalog (
    id               text PRIMARY KEY,
    object_key       text NOT NULL UNIQUE,
    database         text NOT NULL,
    operator         text NOT NULL,
    started_at       timestamptz NOT NULL,
    finished_at      timestamptz NOT NULL,
    plaintext_bytes  bigint NOT NULL CHECK (plaintext_bytes >= 0),
    stored_bytes     bigint NOT NULL CHECK (stored_bytes >= 0),
    plaintext_sha256 text NOT NULL,
    manifest         jsonb NOT NULL,
    verified_at      timestamptz,
    verify           jsonb,
    drilled_at       timestamptz,
    drill            jsonb,
    pruned_at        timestamptz,
    recorded_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX backup_catalog_finished ON ops.backup_catalog (finished_at DESC);

-- The console catalogues, verifies and prunes; it never rewrites what a backup was.
GRANT SELECT, INSERT ON ops.backup_catalog TO ops_runtime;
GRANT UPDATE (verified_at, verify, drilled_at, drill, pruned_at) ON ops.backup_catalog TO ops_runtime;

-- pg_dump reads every table and sequence it dumps, inside one snapshot.
GRANT SELECT ON ALL SEQUENCES IN SCHEMA ops TO ops_runtime;
GRANT SELECT ON ops.incidents, ops.incident_events, ops.schema_migrations TO ops_runtime;
