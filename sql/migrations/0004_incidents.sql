-- Incidents (the AGIS manual's incident response plan): severity P0-P3, status through the
-- plan's steps, a commander, and a timeline of notes and changes. Runbook actions taken
-- while an incident is open join its timeline from ops.audit_log by time, not by copy.

CREATE TABLE ops.incidents (
    id              bigserial PRIMARY KEY,
    title           text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    severity        text NOT NULL CHECK (severity IN ('P0', 'P1', 'P2', 'P3')),
    status          text NOT NULL DEFAULT 'detection' CHECK (status IN
                    ('detection', 'assessment', 'communication', 'mitigation', 'resolved', 'post-mortem')),
    commander       text,
    alert_name      text,
    alert_labels    jsonb NOT NULL DEFAULT '{}'::jsonb,
    declared_by     text NOT NULL,
    declared_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    responded_at    timestamptz,  -- first response: a commander took it or it left detection
    resolved_at     timestamptz,
    last_update_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    impact          text NOT NULL DEFAULT '',
    root_cause      text NOT NULL DEFAULT '',
    action_items    text NOT NULL DEFAULT ''
);
CREATE INDEX incidents_open_idx ON ops.incidents (declared_at DESC) WHERE resolved_at IS NULL;

CREATE TABLE ops.incident_events (
    id          bigserial PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES ops.incidents (id),
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    operator    text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('declared', 'note', 'status', 'commander', 'severity', 'field')),
    body        text NOT NULL
);
CREATE INDEX incident_events_incident_idx ON ops.incident_events (incident_id, id);

CREATE FUNCTION ops.incidents_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ops.notify_event('incidents', '{}'::jsonb);
    RETURN NULL;
END
$$;
CREATE TRIGGER incidents_notify AFTER INSERT OR UPDATE ON ops.incidents
    FOR EACH STATEMENT EXECUTE FUNCTION ops.incidents_notify();
CREATE TRIGGER incident_events_notify AFTER INSERT ON ops.incident_events
    FOR EACH STATEMENT EXECUTE FUNCTION ops.incidents_notify();
