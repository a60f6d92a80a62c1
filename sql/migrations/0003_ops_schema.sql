-- The console's own schema: the append-only, hash-chained audit log, action claims,
-- and the ops_events notification every open console listens to.
-- (ops.schema_migrations itself is created by the migration runner before any migration.)

CREATE SCHEMA IF NOT EXISTS ops;

CREATE TABLE ops.audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    operator    text NOT NULL,
    role        text NOT NULL,
    action      text NOT NULL,
    target      text NOT NULL DEFAULT '',
    phase       text NOT NULL CHECK (phase IN ('intent', 'outcome')),
    outcome     text CHECK (outcome IN ('ok', 'failed', 'refused', 'dry-run')),
    intent_id   bigint REFERENCES ops.audit_log (id),
    duration_ms integer,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    error       text,
    prev_hash   text NOT NULL,
    hash        text NOT NULL
);
CREATE INDEX audit_log_target_idx ON ops.audit_log (target, id);
CREATE INDEX audit_log_at_idx ON ops.audit_log (at);

-- The hash of one row: sha256 over the previous row's hash and this row's content.
-- `opsconsole audit verify` recomputes it with the same function.
CREATE FUNCTION ops.audit_row_hash(prev text, r ops.audit_log) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(concat_ws(E'\x1f',
        prev, r.id::text, to_char(r.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
        r.operator, r.role, r.action, r.target, r.phase, coalesce(r.outcome, ''),
        coalesce(r.intent_id::text, ''), coalesce(r.duration_ms::text, ''),
        r.detail::text, coalesce(r.error, '')), 'UTF8')), 'hex')
$$;

CREATE FUNCTION ops.audit_log_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    last_hash text;
BEGIN
    -- Serialise writers so the chain has exactly one successor per row.
    PERFORM pg_advisory_xact_lock(hashtext('ops.audit_log'));
    SELECT hash INTO last_hash FROM ops.audit_log ORDER BY id DESC LIMIT 1;
    NEW.prev_hash := coalesce(last_hash, '');
    NEW.hash := ops.audit_row_hash(NEW.prev_hash, NEW);
    RETURN NEW;
END
$$;

CREATE FUNCTION ops.audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ops.audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_chain BEFORE INSERT ON ops.audit_log
    FOR EACH ROW EXECUTE FUNCTION ops.audit_log_chain();
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON ops.audit_log
    FOR EACH ROW EXECUTE FUNCTION ops.audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON ops.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION ops.audit_log_refuse_change();

-- One running action per (action, target): a second operator's claim conflicts.
CREATE TABLE ops.claims (
    action     text NOT NULL,
    target     text NOT NULL,
    operator   text NOT NULL,
    console_id text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (action, target)
);

-- Every open console LISTENs on ops_events and refreshes what the event touches.
CREATE FUNCTION ops.notify_event(kind text, payload jsonb DEFAULT '{}'::jsonb) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_notify('ops_events', json_build_object('kind', kind, 'payload', payload)::text)
$$;

CREATE FUNCTION ops.audit_log_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ops.notify_event('audit', json_build_object(
        'id', NEW.id, 'action', NEW.action, 'target', NEW.target,
        'phase', NEW.phase, 'operator', NEW.operator)::jsonb);
    RETURN NULL;
END
$$;
CREATE TRIGGER audit_log_notify AFTER INSERT ON ops.audit_log
    FOR EACH ROW EXECUTE FUNCTION ops.audit_log_notify();

CREATE FUNCTION ops.claims_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ops.notify_event('claims', '{}'::jsonb);
    RETURN NULL;
END
$$;
CREATE TRIGGER claims_notify AFTER INSERT OR UPDATE OR DELETE ON ops.claims
    FOR EACH STATEMENT EXECUTE FUNCTION ops.claims_notify();
