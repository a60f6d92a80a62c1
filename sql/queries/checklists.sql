-- name: checklist_open_run(checklist)^
-- The checklist's open (not signed off) run, if any.
SELECT id, checklist, started_at, started_by, signed_off_at, signed_off_by, sign_off_note
FROM ops.checklist_runs WHERE checklist = :checklist AND signed_off_at IS NULL;

-- name: checklist_start_run(checklist, started_by)^
-- A new open run; the unique index makes a second open run of one checklist fail.
INSERT INTO ops.checklist_runs (checklist, started_by) VALUES (:checklist, :started_by)
ON CONFLICT (checklist) WHERE signed_off_at IS NULL DO NOTHING
RETURNING id, checklist, started_at, started_by, signed_off_at, signed_off_by, sign_off_note;

-- name: checklist_run(id)^
-- One run by id.
SELECT id, checklist, started_at, started_by, signed_off_at, signed_off_by, sign_off_note
FROM ops.checklist_runs WHERE id = :id;

-- name: checklist_run_for_update(id)^
-- One run, locked while an answer or the sign-off is written.
SELECT id, checklist, started_at, started_by, signed_off_at, signed_off_by, sign_off_note
FROM ops.checklist_runs WHERE id = :id FOR UPDATE;

-- name: checklist_last_signed(checklist)^
-- The checklist's last signed-off run.
SELECT id, checklist, started_at, started_by, signed_off_at, signed_off_by, sign_off_note
FROM ops.checklist_runs WHERE checklist = :checklist AND signed_off_at IS NOT NULL
ORDER BY signed_off_at DESC, id DESC LIMIT 1;

-- name: checklist_runs(checklist, limit)
-- The runs, newest first (one checklist's when given).
SELECT id, checklist, started_at, started_by, signed_off_at, signed_off_by, sign_off_note
FROM ops.checklist_runs WHERE :checklist::text IS NULL OR checklist = :checklist::text
ORDER BY started_at DESC, id DESC LIMIT :limit;

-- name: checklist_items(run_id)
-- A run's items in the checklist's order.
SELECT run_id, item, position, title, kind, state, figure, threshold, evidence, checked_at,
       answered_by, answered_at, note, carried_from
FROM ops.checklist_items WHERE run_id = :run_id ORDER BY position, item;

-- name: checklist_item_insert(run_id, item, position, title, kind, state, figure, threshold, evidence, carried_from)!
-- An item as first seen in a run (a second console's insert of the same item does nothing).
INSERT INTO ops.checklist_items (run_id, item, position, title, kind, state, figure, threshold, evidence,
                                 carried_from)
VALUES (:run_id, :item, :position, :title, :kind, :state, :figure, :threshold, :evidence::jsonb, :carried_from)
ON CONFLICT (run_id, item) DO NOTHING;

-- name: checklist_item_seen(run_id, item, state, figure, threshold, evidence)!
-- An automatic item's evidence as seen now.
UPDATE ops.checklist_items
SET state = :state, figure = :figure, threshold = :threshold, evidence = :evidence::jsonb, checked_at = now()
WHERE run_id = :run_id AND item = :item;

-- name: checklist_item_answer(run_id, item, state, answered_by, note)^
-- The operator's answer to a manual item (or their note on an automatic one).
UPDATE ops.checklist_items
SET state = CASE WHEN kind = 'manual' THEN :state ELSE state END, answered_by = :answered_by,
    answered_at = now(), note = :note
WHERE run_id = :run_id AND item = :item
RETURNING item, state, answered_at;

-- name: checklist_sign_off(id, signed_off_by, note)^
-- Sign the open run off: from then on the database refuses any change to it.
UPDATE ops.checklist_runs SET signed_off_at = now(), signed_off_by = :signed_off_by, sign_off_note = :note
WHERE id = :id AND signed_off_at IS NULL
RETURNING id, signed_off_at;

-- name: checklist_last_done(item)^
-- When a manual item was last answered done in any run (a rotation, a drill): its record.
SELECT i.answered_at AS at, i.answered_by AS by, i.note, i.run_id
FROM ops.checklist_items i
WHERE i.item = :item AND i.kind = 'manual' AND i.state = 'pass' AND i.answered_at IS NOT NULL
ORDER BY i.answered_at DESC LIMIT 1;

-- name: check_stuck_paid()
-- GIVRWRLD's morning "orders stuck in paid": paid over 10 minutes ago with no server.
SELECT o.id::text AS id, o.server_name, o.plan_id, o.created_at,
       round(extract(epoch FROM (now() - o.created_at)) / 60)::int AS minutes
FROM orders o
WHERE o.status = 'paid' AND (o.pterodactyl_server_id IS NULL OR o.pterodactyl_server_id = '')
  AND o.created_at < now() - interval '10 minutes'
ORDER BY o.created_at LIMIT 50;

-- name: check_error_orders()
-- Orders that went to error in the last 24 hours (the runbook's error query, a day of it).
SELECT o.id::text AS id, o.server_name, o.plan_id, o.error_message, o.updated_at
FROM orders o
WHERE o.status = 'error' AND o.updated_at > now() - interval '24 hours'
ORDER BY o.updated_at DESC LIMIT 50;

-- name: check_provisioning_rate()^
-- The runbook's provisioning success rate, over the last 7 days instead of the hour.
SELECT count(*) FILTER (WHERE status = 'provisioned')::int AS provisioned, count(*)::int AS considered,
       CASE WHEN count(*) > 0 THEN count(*) FILTER (WHERE status = 'provisioned') * 100.0 / count(*) END AS rate
FROM orders
WHERE created_at > now() - interval '7 days' AND status IN ('paid', 'provisioning', 'provisioned', 'error');

-- name: check_subscriptions()^
-- The AGIS daily "monitor subscription stats": live subscriptions, new and canceled in 24 h.
SELECT count(*) FILTER (WHERE status IN ('provisioned', 'active'))::int AS live,
       count(*) FILTER (WHERE created_at > now() - interval '24 hours')::int AS new_24h,
       count(*) FILTER (WHERE status IN ('canceled', 'refunded')
                          AND updated_at > now() - interval '24 hours')::int AS canceled_24h
FROM orders WHERE stripe_subscription_id IS NOT NULL;

-- name: check_last_vacuum()
-- The ten largest tables and when each was last vacuumed (by hand or autovacuum).
SELECT s.schemaname || '.' || s.relname AS "table",
       greatest(s.last_vacuum, s.last_autovacuum) AS vacuumed_at,
       s.n_dead_tup::bigint AS dead_rows
FROM pg_stat_user_tables s
ORDER BY pg_total_relation_size(s.relid) DESC LIMIT 10;

-- name: check_last_action(action, command)^
-- The last successful runbook action of this name (with this `command` param, when given).
SELECT a.at, a.operator, a.target, i.detail ->> 'command' AS command
FROM ops.audit_log a
JOIN ops.audit_log i ON i.id = a.intent_id
WHERE a.action = :action AND a.phase = 'outcome' AND a.outcome = 'ok'
  AND (:command::text IS NULL OR i.detail ->> 'command' ILIKE '%' || :command::text || '%')
ORDER BY a.id DESC LIMIT 1;

-- name: check_last_price_change()^
-- The last price change the console recorded (what the monthly pricing review starts from).
SELECT at, operator, game_type FROM ops.pricing_history ORDER BY at DESC, id DESC LIMIT 1;
