-- name: purchase_credits_matching(payment_intents, refs, since)
-- The purchase credits that match paid checkout sessions: on the payment intent (what the
-- bot records), on a session or event id written in the description (since `since`), or a
-- manual credit the console recorded for the session. `matched` is the key that matched.
SELECT ct.stripe_payment_intent_id AS matched, 'credit #' || ct.id || ' (payment intent)' AS how
FROM credit_transactions ct
WHERE ct.transaction_type = 'purchase' AND ct.stripe_payment_intent_id = ANY(:payment_intents::text[])
UNION ALL
SELECT m[1] AS matched, 'credit #' || ct.id || ' (' || m[1] || ' in its description)' AS how
FROM credit_transactions ct,
     regexp_matches(coalesce(ct.description, ''), '((?:cs|evt)_[A-Za-z0-9_]+)', 'g') AS m
WHERE ct.transaction_type = 'purchase' AND ct.created_at >= :since::timestamptz
  AND m[1] = ANY(:refs::text[])
UNION ALL
SELECT pc.session_id AS matched, 'credited by ' || pc.operator || ' (credit #' || pc.credit_transaction_id || ')' AS how
FROM ops.payment_credits pc
WHERE pc.session_id = ANY(:refs::text[]);

-- name: user_emails(user_ids)
-- The users a reconciliation names, by id (ids that are not uuids are left out by the caller).
SELECT id::text AS id, email FROM users WHERE id = ANY(:user_ids::uuid[]);

-- name: lock_payment(payment_intent)$
-- One credit at a time per payment: every console (and a retry) queues here before looking.
SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtextextended('opsconsole:payment:' || :payment_intent, 0))) l;

-- name: credit_for_payment(payment_intent, session_id)^
-- The credit a payment already has, if any (read under lock_payment's lock).
SELECT ct.id, ct.created_at AS at, ct.amount, coalesce(pc.operator, 'the webhook') AS by
FROM credit_transactions ct
LEFT JOIN ops.payment_credits pc ON pc.credit_transaction_id = ct.id
WHERE ct.transaction_type = 'purchase'
  AND (ct.stripe_payment_intent_id = :payment_intent
       OR ct.id = (SELECT credit_transaction_id FROM ops.payment_credits WHERE session_id = :session_id))
ORDER BY ct.id
LIMIT 1;

-- name: user_exists(user_id)$
-- Whether the user a checkout session names exists here.
SELECT EXISTS (SELECT 1 FROM users WHERE id = :user_id::uuid);

-- name: insert_purchase_credit(user_id, credits, description, payment_intent)^
-- The manual credit: a purchase row as the webhook would have written it.
INSERT INTO credit_transactions (user_id, amount, transaction_type, description, stripe_payment_intent_id)
VALUES (:user_id::uuid, :credits, 'purchase', :description, :payment_intent)
RETURNING id, created_at AS at;

-- name: record_payment_credit(session_id, payment_intent, user_id, credits, amount_cents, currency, credit_transaction_id, operator)^
-- What makes the manual credit once-only: one row per session, in the same transaction.
INSERT INTO ops.payment_credits
    (session_id, payment_intent, user_id, credits, amount_cents, currency, credit_transaction_id, operator)
VALUES (:session_id, :payment_intent, :user_id, :credits, :amount_cents, :currency, :credit_transaction_id,
        :operator)
RETURNING at;

-- name: purchase_once_index()$
-- Whether credit_transactions has the one-purchase-per-payment-intent unique index.
SELECT EXISTS (
    SELECT 1 FROM pg_index i
    JOIN pg_class t ON t.oid = i.indrelid
    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0]
    WHERE t.relname = 'credit_transactions' AND i.indisunique AND i.indnatts = 1
      AND a.attname = 'stripe_payment_intent_id'
);
