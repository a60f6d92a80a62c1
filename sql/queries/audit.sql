-- name: audit_insert(operator, role, action, target, phase, outcome, intent_id, duration_ms, detail, error)^
-- Append one audit row (the trigger chains its hash); returns its id, time and hash.
INSERT INTO ops.audit_log (operator, role, action, target, phase, outcome, intent_id, duration_ms, detail, error)
VALUES (:operator, :role, :action, :target, :phase, :outcome, :intent_id, :duration_ms,
        :detail::jsonb, :error)
RETURNING id, at, hash;

-- name: audit_database_identity()^
-- Which database this audit log lives in, as the anchor store keys it: the cluster's
-- system identifier (new for every initdb) and the database's oid (new for every database).
SELECT (SELECT system_identifier FROM pg_control_system())::text AS cluster,
       d.oid::bigint AS oid, d.datname::text AS name
FROM pg_database d
WHERE d.datname = current_database();

-- name: audit_page(operator, action, target, outcome, before_id, limit)
-- One page of the audit log, newest first, filtered by whichever of operator, action,
-- target and outcome are given (NULL: any), before the keyset cursor id. `target` is a
-- LIKE-escaped prefix: the 8 characters of an id the tables show find its rows.
SELECT id, at, operator, role, action, target, phase, outcome, intent_id, duration_ms,
       detail::text AS detail, error
FROM ops.audit_log
WHERE (:operator::text IS NULL OR operator = :operator)
  AND (:action::text IS NULL OR action = :action)
  AND (:target::text IS NULL OR target LIKE :target::text || '%')
  AND (:outcome::text IS NULL OR outcome = :outcome)
  AND (:before_id::bigint IS NULL OR id < :before_id)
ORDER BY id DESC
LIMIT :limit;

-- name: audit_chain(after_id, first_prev, limit)
-- Rows in id order with the hash the chain says they should have: `expected` is
-- recomputed from the stored previous hash, `prev_ok` compares that with the row before.
SELECT a.id, a.hash, a.prev_hash,
       ops.audit_row_hash(a.prev_hash, a) AS expected,
       coalesce(lag(a.hash) OVER (ORDER BY a.id), :first_prev::text) AS previous_hash
FROM ops.audit_log a
WHERE a.id > :after_id
ORDER BY a.id
LIMIT :limit;
