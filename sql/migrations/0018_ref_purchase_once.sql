-- A payment intent buys credits once: at most one `purchase` row per Stripe payment intent.
-- This is what keeps a webhook resend that lands after a manual credit (or a second delivery
-- of the same event) from crediting the user twice: the bot's insert conflicts and does
-- nothing. On a production database a DBA creates the same index on the business's own
-- table (`opsconsole doctor` says when it is missing).
CREATE UNIQUE INDEX IF NOT EXISTS credit_transactions_purchase_once
    ON credit_transactions (stripe_payment_intent_id)
    WHERE transaction_type = 'purchase' AND stripe_payment_intent_id IS NOT NULL;

-- The payments runbook's manual credit (sql/queries/payments.sql insert_purchase_credit)
-- appends a purchase row; the runtime role may insert exactly those columns.
GRANT INSERT (user_id, amount, transaction_type, description, stripe_payment_intent_id)
    ON credit_transactions TO ops_runtime;
GRANT USAGE ON SEQUENCE credit_transactions_id_seq TO ops_runtime;
