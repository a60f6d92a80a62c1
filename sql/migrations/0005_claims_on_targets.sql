-- Claims are on the target (an order, a node, a deployment), not on (action, target): two
-- different actions on one order exclude each other. A claim lives while its console
-- heartbeats (every few seconds), so a dead console's claim is gone within seconds; it
-- carries the intent it belongs to and the action's last progress line, so a console that
-- finds a dead claim can record that intent as abandoned.
-- Outcomes may also be 'unknown' (the call was sent, its result could not be read) and
-- 'abandoned' (the console that ran it is gone).

DROP TABLE ops.claims;

CREATE TABLE ops.claims (
    target_kind  text NOT NULL,
    target       text NOT NULL,
    action       text NOT NULL,
    operator     text NOT NULL,
    console_id   text NOT NULL,
    intent_id    bigint,
    progress     text NOT NULL DEFAULT '',
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (target_kind, target)
);

CREATE TRIGGER claims_notify AFTER INSERT OR UPDATE OF operator, console_id, action OR DELETE
    ON ops.claims FOR EACH STATEMENT EXECUTE FUNCTION ops.claims_notify();

ALTER TABLE ops.audit_log DROP CONSTRAINT audit_log_outcome_check;
ALTER TABLE ops.audit_log ADD CONSTRAINT audit_log_outcome_check
    CHECK (outcome IN ('ok', 'failed', 'refused', 'dry-run', 'unknown', 'abandoned'));
