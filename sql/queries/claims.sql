-- name: claim_take(target_kind, target, action, operator, console_id, intent_id, seconds)^
-- Claim the target for this console unless another console's live claim holds it; an
-- expired claim (its console stopped heart-beating) is taken over. Returns the claim when
-- it is ours, with the previous holder's intent and progress when one was taken over.
WITH old AS (
    SELECT target_kind, target, console_id AS old_console, intent_id AS old_intent,
           progress AS old_progress, operator AS old_operator, action AS old_action
    FROM ops.claims
    WHERE target_kind = :target_kind AND target = :target AND expires_at < now()
)
INSERT INTO ops.claims AS c (target_kind, target, action, operator, console_id, intent_id,
                             progress, started_at, heartbeat_at, expires_at)
VALUES (:target_kind, :target, :action, :operator, :console_id, :intent_id, '', now(), now(),
        now() + make_interval(secs => :seconds))
ON CONFLICT (target_kind, target) DO UPDATE
    SET action = excluded.action, operator = excluded.operator, console_id = excluded.console_id,
        intent_id = excluded.intent_id, progress = '', started_at = excluded.started_at,
        heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at
    WHERE c.expires_at < now()
RETURNING c.action, c.target_kind, c.target, c.operator, c.console_id, c.started_at,
          (SELECT old_intent FROM old) AS abandoned_intent,
          (SELECT old_progress FROM old) AS abandoned_progress,
          (SELECT old_operator FROM old) AS abandoned_operator,
          (SELECT old_action FROM old) AS abandoned_action;

-- name: claim_heartbeat(target_kind, target, console_id, progress, seconds)^
-- Keep this console's claim alive (and record its latest progress line); returns nothing
-- when the claim is no longer ours.
UPDATE ops.claims
SET heartbeat_at = now(), expires_at = now() + make_interval(secs => :seconds),
    progress = coalesce(:progress::text, progress)
WHERE target_kind = :target_kind AND target = :target AND console_id = :console_id
RETURNING target;

-- name: claim_holder(target_kind, target)^
-- Who holds the live claim on the target, doing what, and for how long.
SELECT action, target_kind, target, operator, console_id, started_at,
       extract(epoch FROM (now() - started_at)) AS seconds
FROM ops.claims
WHERE target_kind = :target_kind AND target = :target AND expires_at >= now();

-- name: claim_release(target_kind, target, console_id)!
-- Release this console's claim.
DELETE FROM ops.claims
WHERE target_kind = :target_kind AND target = :target AND console_id = :console_id;

-- name: live_claims()
-- Every action running right now in any console, oldest first.
SELECT action, target_kind, target, operator, console_id, started_at,
       extract(epoch FROM (now() - started_at)) AS seconds
FROM ops.claims
WHERE expires_at >= now()
ORDER BY started_at;

-- name: dead_claims()
-- Claims whose console stopped heart-beating: their intents may have no outcome.
SELECT target_kind, target, action, operator, console_id, intent_id, progress
FROM ops.claims
WHERE expires_at < now();

-- name: claim_drop_dead(target_kind, target, console_id)!
-- Remove a dead claim once its intent is recorded as abandoned.
DELETE FROM ops.claims
WHERE target_kind = :target_kind AND target = :target AND console_id = :console_id
  AND expires_at < now();

-- name: intent_without_outcome(intent_id)^
-- The intent row when no outcome has been written for it.
SELECT i.id, i.operator, i.role, i.action, i.target
FROM ops.audit_log i
WHERE i.id = :intent_id AND i.phase = 'intent'
  AND NOT EXISTS (SELECT 1 FROM ops.audit_log o WHERE o.intent_id = i.id AND o.phase = 'outcome');
