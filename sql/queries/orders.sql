-- name: orders_figures()^
-- The orders header: the runbooks' monitoring queries (stuck in paid > 10 min, orders in
-- error, provisioning success over the last hour, average provisioning time over 24 h).
-- success_rate is NULL when the hour had no orders (the runbook's SQL divides by zero).
SELECT
    (SELECT count(*) FROM orders
      WHERE status = 'paid'
        AND (pterodactyl_server_id IS NULL OR pterodactyl_server_id = '')
        AND created_at < now() - interval '10 minutes') AS stuck,
    (SELECT count(*) FROM orders WHERE status = 'error') AS errors,
    hour.provisioned AS provisioned_1h,
    hour.considered AS considered_1h,
    CASE WHEN hour.considered > 0 THEN hour.provisioned * 100.0 / hour.considered END AS success_rate,
    (SELECT avg(extract(epoch FROM (updated_at - created_at))) / 60 FROM orders
      WHERE status = 'provisioned'
        AND updated_at > now() - interval '24 hours') AS avg_provision_minutes,
    now() AS as_of
FROM (
    SELECT count(*) FILTER (WHERE status = 'provisioned') AS provisioned, count(*) AS considered
    FROM orders
    WHERE created_at > now() - interval '1 hour'
      AND status IN ('paid', 'provisioning', 'provisioned', 'error')
) AS hour;

-- name: stuck_orders(limit)
-- Orders paid more than 10 minutes ago that still have no server, oldest first.
SELECT o.id, o.user_id, o.plan_id, o.server_name, o.status, o.pterodactyl_server_id,
       o.error_message, o.created_at, o.updated_at, u.email,
       extract(epoch FROM (now() - o.created_at)) / 60 AS minutes_waiting
FROM orders o
JOIN users u ON u.id = o.user_id
WHERE o.status = 'paid'
  AND (o.pterodactyl_server_id IS NULL OR o.pterodactyl_server_id = '')
  AND o.created_at < now() - interval '10 minutes'
ORDER BY o.created_at ASC, o.id ASC
LIMIT :limit;

-- name: error_orders(limit)
-- Orders in error, most recently updated first.
SELECT o.id, o.user_id, o.plan_id, o.server_name, o.status, o.pterodactyl_server_id,
       o.error_message, o.created_at, o.updated_at, u.email,
       NULL::double precision AS minutes_waiting
FROM orders o
JOIN users u ON u.id = o.user_id
WHERE o.status = 'error'
ORDER BY o.updated_at DESC, o.id DESC
LIMIT :limit;

-- name: recent_orders(before_created, before_id, limit)
-- One page of all orders, newest first, strictly after the keyset (created_at, id)
-- cursor; NULL cursor for the first page.
SELECT o.id, o.user_id, o.plan_id, o.server_name, o.status, o.pterodactyl_server_id,
       o.error_message, o.created_at, o.updated_at, u.email,
       NULL::double precision AS minutes_waiting
FROM orders o
JOIN users u ON u.id = o.user_id
WHERE :before_created::timestamptz IS NULL
   OR (o.created_at, o.id) < (:before_created::timestamptz, :before_id::uuid)
ORDER BY o.created_at DESC, o.id DESC
LIMIT :limit;

-- name: search_orders_by_uuid(key, limit)
-- Orders whose id or user id is the given uuid, newest first.
SELECT o.id, o.user_id, o.plan_id, o.server_name, o.status, o.pterodactyl_server_id,
       o.error_message, o.created_at, o.updated_at, u.email,
       NULL::double precision AS minutes_waiting
FROM orders o
JOIN users u ON u.id = o.user_id
WHERE o.id = :key::uuid OR o.user_id = :key::uuid
ORDER BY o.created_at DESC, o.id DESC
LIMIT :limit;

-- name: search_orders_by_id_prefix(low, high, limit)
-- Orders whose id or user id starts with a prefix as the tables show it: the uuids from
-- low to high (the prefix padded with 0s and with fs), one range of each index. Newest first.
SELECT o.id, o.user_id, o.plan_id, o.server_name, o.status, o.pterodactyl_server_id,
       o.error_message, o.created_at, o.updated_at, u.email,
       NULL::double precision AS minutes_waiting
FROM orders o
JOIN users u ON u.id = o.user_id
WHERE o.id BETWEEN :low::uuid AND :high::uuid
   OR o.user_id BETWEEN :low::uuid AND :high::uuid
ORDER BY o.created_at DESC, o.id DESC
LIMIT :limit;

-- name: count_orders_by_server_name(prefix, cap)$
-- How many orders' server names start with the prefix (case-insensitive), counted up to
-- `cap` off the covering prefix index alone: which of the two server name searches to run.
-- The index range is spelled out rather than left to LIKE so that a generic plan (a
-- prepared statement run often) still reads one range of the index: everything from the
-- prefix up to the prefix followed by the last code point; starts_with is the exact test.
SELECT count(*)
FROM (
    SELECT 1
    FROM orders o
    WHERE lower(o.server_name) ~>=~ lower(:prefix::text)
      AND lower(o.server_name) ~<~ (lower(:prefix::text) || chr(1114111))
      AND starts_with(lower(o.server_name), lower(:prefix::text))
    LIMIT :cap
) AS hits;

-- name: search_orders_by_server_name(prefix, cap, limit)
-- Orders whose server name starts with a prefix fewer than `cap` orders share (case-
-- insensitive), newest first: every match read off the covering prefix index, the newest
-- `limit` kept, and only those read from the table.
SELECT o.id, o.user_id, o.plan_id, o.server_name, o.status, o.pterodactyl_server_id,
       o.error_message, o.created_at, o.updated_at, u.email,
       NULL::double precision AS minutes_waiting
FROM (
    SELECT id, created_at
    FROM (
        SELECT o.id, o.created_at
        FROM orders o
        WHERE lower(o.server_name) ~>=~ lower(:prefix::text)
          AND lower(o.server_name) ~<~ (lower(:prefix::text) || chr(1114111))
          AND starts_with(lower(o.server_name), lower(:prefix::text))
        LIMIT :cap
    ) AS hits
    ORDER BY created_at DESC, id DESC
    LIMIT :limit
) AS newest
JOIN orders o ON o.id = newest.id
JOIN users u ON u.id = o.user_id
ORDER BY o.created_at DESC, o.id DESC;

-- name: search_orders_by_server_name_newest(prefix, limit)
-- Orders whose server name starts with a prefix that many orders share (case-insensitive),
-- newest first: all orders walked newest first until `limit` match.
SELECT o.id, o.user_id, o.plan_id, o.server_name, o.status, o.pterodactyl_server_id,
       o.error_message, o.created_at, o.updated_at, u.email,
       NULL::double precision AS minutes_waiting
FROM orders o
JOIN users u ON u.id = o.user_id
WHERE starts_with(lower(o.server_name), lower(:prefix::text))
ORDER BY o.created_at DESC, o.id DESC
LIMIT :limit;

-- name: count_customers_by_email(prefix, cap)$
-- How many customers' emails start with the prefix (case-insensitive), counted up to
-- `cap` off the covering email index: which of the two email searches to run. The index
-- range is spelled out as in count_orders_by_server_name.
SELECT count(*)
FROM (
    SELECT 1
    FROM users
    WHERE lower(email) ~>=~ lower(:prefix::text)
      AND lower(email) ~<~ (lower(:prefix::text) || chr(1114111))
      AND starts_with(lower(email), lower(:prefix::text))
    LIMIT :cap
) AS who;

-- name: search_orders_by_email(prefix, cap, limit)
-- Orders of the fewer than `cap` customers whose email starts with the prefix (case-
-- insensitive), newest first, from the covering email and (user_id, created_at) indexes.
WITH who AS MATERIALIZED (
    SELECT id
    FROM users
    WHERE lower(email) ~>=~ lower(:prefix::text)
      AND lower(email) ~<~ (lower(:prefix::text) || chr(1114111))
      AND starts_with(lower(email), lower(:prefix::text))
    ORDER BY lower(email) USING ~<~
    LIMIT :cap
), newest AS (
    SELECT o.id, o.created_at
    FROM who w
    JOIN orders o ON o.user_id = w.id
    ORDER BY o.created_at DESC, o.id DESC
    LIMIT :limit
)
SELECT o.id, o.user_id, o.plan_id, o.server_name, o.status, o.pterodactyl_server_id,
       o.error_message, o.created_at, o.updated_at, u.email,
       NULL::double precision AS minutes_waiting
FROM newest h
JOIN orders o ON o.id = h.id
JOIN users u ON u.id = o.user_id
ORDER BY o.created_at DESC, o.id DESC;

-- name: search_orders_by_email_newest(prefix, limit)
-- Orders of the many customers whose email starts with the prefix (case-insensitive),
-- newest first: their ids hashed once (IS TRUE keeps the IN a hashed filter, not a join
-- probing users for every order), then all orders walked newest first until `limit` match.
SELECT o.id, o.user_id, o.plan_id, o.server_name, o.status, o.pterodactyl_server_id,
       o.error_message, o.created_at, o.updated_at, u.email,
       NULL::double precision AS minutes_waiting
FROM orders o
JOIN users u ON u.id = o.user_id
WHERE (o.user_id IN (
        SELECT id FROM users
        WHERE lower(email) ~>=~ lower(:prefix::text)
          AND lower(email) ~<~ (lower(:prefix::text) || chr(1114111))
          AND starts_with(lower(email), lower(:prefix::text))
      )) IS TRUE
ORDER BY o.created_at DESC, o.id DESC
LIMIT :limit;

-- name: order_detail(id)^
-- Everything about one order: its plan and RAM, node, customer and panel account.
SELECT o.id, o.user_id, o.plan_id, o.server_name, o.status, o.node_id,
       o.pterodactyl_server_id, o.pterodactyl_server_identifier,
       o.stripe_subscription_id, o.stripe_payment_intent_id, o.amount_cents,
       o.error_message, o.created_at, o.updated_at,
       p.name AS plan_name, p.game, p.ram_gb, p.egg_id, p.price_monthly,
       n.name AS node_name, n.enabled AS node_enabled,
       u.email, u.display_name,
       x.pterodactyl_user_id, x.panel_username
FROM orders o
JOIN users u ON u.id = o.user_id
JOIN plans p ON p.id = o.plan_id
LEFT JOIN ptero_nodes n ON n.id = o.node_id
LEFT JOIN external_accounts x ON x.user_id = o.user_id
WHERE o.id = :id::uuid;

-- name: order_for_update(id)^
-- The order's current state, locked for the rest of the transaction: the precondition
-- every order action re-checks just before it changes anything.
SELECT o.id, o.user_id, o.status, o.pterodactyl_server_id, o.stripe_subscription_id,
       o.stripe_payment_intent_id, o.amount_cents,
       EXISTS (SELECT 1 FROM external_accounts x WHERE x.user_id = o.user_id) AS has_panel_account
FROM orders o
WHERE o.id = :id::uuid
FOR UPDATE OF o;

-- name: order_state(id)^
-- The order's status and server id right now (verification after an action).
SELECT id, status, pterodactyl_server_id, pterodactyl_server_identifier, error_message, updated_at
FROM orders
WHERE id = :id::uuid;

-- name: set_order_canceled(id)!
-- The cancel runbook's UPDATE: the order's status becomes canceled.
UPDATE orders SET status = 'canceled', updated_at = now() WHERE id = :id::uuid;

-- name: panel_account(user_id)^
-- The customer's panel account, if any (the panel sync runbook's check).
SELECT user_id, pterodactyl_user_id, panel_username, created_at
FROM external_accounts
WHERE user_id = :user_id::uuid;

-- name: clear_order_server(id)!
-- After the cancel runbook deleted the panel server: the order no longer has one.
UPDATE orders SET pterodactyl_server_id = NULL, pterodactyl_server_identifier = NULL, updated_at = now()
WHERE id = :id::uuid;
