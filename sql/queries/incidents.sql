-- name: open_incidents()
-- Incidents not yet through their post-mortem, the most severe and newest first.
SELECT * FROM ops.incidents
WHERE status <> 'post-mortem'
ORDER BY severity, declared_at DESC;

-- name: recent_incidents(limit)
-- Every incident, newest first (the headless list).
SELECT * FROM ops.incidents ORDER BY declared_at DESC LIMIT :limit;

-- name: incident(id)^
-- One incident.
SELECT * FROM ops.incidents WHERE id = :id;

-- name: incident_for_update(id)^
-- One incident, locked for a change.
SELECT * FROM ops.incidents WHERE id = :id FOR UPDATE;

-- name: declare_incident(title, severity, commander, alert_name, alert_labels, declared_by)$
-- Open an incident; returns its id. Declaring is not responding: the response clock runs
-- until someone takes command, posts a note or moves it out of detection.
INSERT INTO ops.incidents (title, severity, commander, alert_name, alert_labels, declared_by)
VALUES (:title, :severity, :commander, :alert_name, :alert_labels::jsonb, :declared_by)
RETURNING id;

-- name: set_incident_severity(id, severity)!
-- Re-grade an incident (P0-P3); its response target follows the new severity.
UPDATE ops.incidents SET severity = :severity, last_update_at = clock_timestamp() WHERE id = :id;

-- name: set_incident_status(id, status)!
-- Move an incident to a step of the plan; leaving detection is the first response.
UPDATE ops.incidents
SET status = :status,
    responded_at = coalesce(responded_at, CASE WHEN :status <> 'detection' THEN clock_timestamp() END),
    resolved_at = CASE WHEN :status IN ('resolved', 'post-mortem')
                       THEN coalesce(resolved_at, clock_timestamp()) ELSE NULL END,
    last_update_at = clock_timestamp()
WHERE id = :id;

-- name: set_incident_commander(id, commander)!
-- Someone takes command (a first response too).
UPDATE ops.incidents
SET commander = :commander, responded_at = coalesce(responded_at, clock_timestamp()),
    last_update_at = clock_timestamp()
WHERE id = :id;

-- name: set_incident_text(id, impact, root_cause, action_items)!
-- The post-mortem's fields.
UPDATE ops.incidents
SET impact = :impact, root_cause = :root_cause, action_items = :action_items, last_update_at = clock_timestamp()
WHERE id = :id;

-- name: touch_incident(id)!
-- A status update was posted (a note counts): the 30-minute reminder starts over, and a
-- note is an acknowledgement: the first one is the response.
UPDATE ops.incidents
SET last_update_at = clock_timestamp(), responded_at = coalesce(responded_at, clock_timestamp())
WHERE id = :id;

-- name: add_incident_event(incident_id, operator, kind, body)$
-- One line of the timeline; returns its id.
INSERT INTO ops.incident_events (incident_id, operator, kind, body)
VALUES (:incident_id, :operator, :kind, :body)
RETURNING id;

-- name: incident_events(incident_id)
-- The incident's own timeline lines, oldest first.
SELECT id, at, operator, kind, body FROM ops.incident_events
WHERE incident_id = :incident_id ORDER BY id;

-- name: actions_during(since, until)
-- Runbook actions that finished while an incident was open (the timeline links them).
SELECT o.id, o.at, o.operator, o.action, o.target, o.outcome, o.error, o.detail
FROM ops.audit_log o
WHERE o.phase = 'outcome' AND o.at >= :since AND o.at <= coalesce(:until::timestamptz, clock_timestamp())
ORDER BY o.id;
