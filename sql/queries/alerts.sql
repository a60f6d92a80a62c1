-- name: business_alerts()^
-- The runbooks' alert conditions the console evaluates itself: orders stuck in paid over
-- 15 minutes, orders in error now (critical: "multiple orders in error status"),
-- and enabled nodes above 80% of their RAM (warning), with the oldest stuck order's age.
SELECT
  (SELECT count(*) FROM orders
   WHERE status = 'paid' AND pterodactyl_server_id IS NULL
     AND created_at < now() - interval '15 minutes')::int AS stuck_15m,
  (SELECT min(created_at) FROM orders
   WHERE status = 'paid' AND pterodactyl_server_id IS NULL
     AND created_at < now() - interval '15 minutes') AS oldest_stuck_at,
  (SELECT count(*) FROM orders WHERE status = 'error')::int AS errors,
  (SELECT min(updated_at) FROM orders WHERE status = 'error') AS first_error_at,
  (SELECT coalesce(json_agg(name ORDER BY name), '[]'::json) FROM (
     SELECT n.name
     FROM ptero_nodes n
     LEFT JOIN orders o ON o.node_id = n.id
          AND o.status IN ('paid', 'provisioning', 'installing', 'provisioned', 'active')
     LEFT JOIN plans p ON p.id = o.plan_id
     WHERE n.enabled
     GROUP BY n.id
     HAVING coalesce(sum(p.ram_gb), 0) * 100.0 / n.max_ram_gb > 80) hot)::text AS hot_nodes;
