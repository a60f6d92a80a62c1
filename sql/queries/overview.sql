-- name: overview_figures()^
-- The overview's headline figures: stuck and error orders (the runbooks' monitoring
-- queries), orders created in the last 24 h, and the nodes taking new orders.
SELECT
    (SELECT count(*) FROM orders
      WHERE status = 'paid'
        AND (pterodactyl_server_id IS NULL OR pterodactyl_server_id = '')
        AND created_at < now() - interval '10 minutes') AS stuck,
    (SELECT min(created_at) FROM orders
      WHERE status = 'paid'
        AND (pterodactyl_server_id IS NULL OR pterodactyl_server_id = '')
        AND created_at < now() - interval '10 minutes') AS oldest_stuck_at,
    (SELECT count(*) FROM orders WHERE status = 'error') AS errors,
    (SELECT count(*) FROM orders WHERE created_at > now() - interval '24 hours') AS created_24h,
    (SELECT count(*) FROM ptero_nodes WHERE enabled) AS nodes_enabled,
    (SELECT count(*) FROM ptero_nodes) AS nodes_total,
    now() AS as_of;

-- name: orders_by_status_24h()
-- Orders created in the last 24 hours, per status, most first.
SELECT status, count(*) AS orders
FROM orders
WHERE created_at > now() - interval '24 hours'
GROUP BY status
ORDER BY count(*) DESC, status;

-- name: recent_audit(limit)
-- The latest runbook actions, one row each, newest first: the intent with its outcome, or
-- 'running' while a console holds its claim (or in the moment before it takes one), or
-- 'no outcome' when none ever came.
SELECT i.id, i.at, i.operator, i.action, i.target, i.phase,
       coalesce(o.outcome,
                CASE WHEN EXISTS (SELECT 1 FROM ops.claims c WHERE c.intent_id = i.id AND c.expires_at >= now())
                          OR i.at > now() - interval '30 seconds'
                     THEN 'running' ELSE 'no outcome' END) AS outcome,
       o.error
FROM ops.audit_log i
LEFT JOIN ops.audit_log o ON o.intent_id = i.id AND o.phase = 'outcome'
WHERE i.phase = 'intent'
ORDER BY i.id DESC
LIMIT :limit;
