-- Two database roles. `opsconsole migrate` runs as the owner of schema ops (it creates and
-- alters everything here); the console runs as a login role that is a member of the group
-- role ops_runtime, which owns nothing and may only do what the console does. Above all it
-- may only SELECT and INSERT on ops.audit_log: no UPDATE, DELETE or TRUNCATE, and since it
-- does not own the table it cannot DISABLE or DROP the triggers that keep the log
-- append-only and chained.
--
-- No ALTER DEFAULT PRIVILEGES: a table added later gets no access until its migration
-- grants it, so an audit-like table is never writable by accident.

DO $$
DECLARE
    me record;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ops_runtime') THEN
        RETURN;
    END IF;
    SELECT rolsuper, rolcreaterole INTO me FROM pg_roles WHERE rolname = current_user;
    IF NOT (me.rolsuper OR me.rolcreaterole) THEN
        RAISE EXCEPTION 'the role ops_runtime does not exist and % may not create it; a DBA must run '
            '"CREATE ROLE ops_runtime NOLOGIN;" (and, for the console, "CREATE ROLE <login> LOGIN '
            'PASSWORD ''...'' IN ROLE ops_runtime;"), then run opsconsole migrate again', current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    BEGIN
        CREATE ROLE ops_runtime NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- another database on this cluster was migrated at the same moment
    END;
END
$$;

GRANT USAGE ON SCHEMA ops TO ops_runtime;

-- The audit log: read and append, nothing else. An appended row takes its id, time and
-- hashes from the table (sequence, clock, trigger), never from the writer.
GRANT SELECT ON ops.audit_log TO ops_runtime;
GRANT INSERT (operator, role, action, target, phase, outcome, intent_id, duration_ms, detail, error)
    ON ops.audit_log TO ops_runtime;
GRANT USAGE ON SEQUENCE ops.audit_log_id_seq TO ops_runtime;

-- The console's working tables: claims come and go, incidents are edited.
GRANT SELECT, INSERT, UPDATE, DELETE ON ops.claims, ops.incidents, ops.incident_events TO ops_runtime;
GRANT USAGE ON SEQUENCE ops.incidents_id_seq, ops.incident_events_id_seq TO ops_runtime;

-- Which migrations are applied (doctor and start-up checks read it).
GRANT SELECT ON ops.schema_migrations TO ops_runtime;

-- Functions: `audit verify` recomputes hashes; triggers notify every open console.
GRANT EXECUTE ON FUNCTION ops.audit_row_hash(text, ops.audit_log) TO ops_runtime;
GRANT EXECUTE ON FUNCTION ops.notify_event(text, jsonb) TO ops_runtime;
