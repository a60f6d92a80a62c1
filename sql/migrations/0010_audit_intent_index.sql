-- Each intent's outcome is found by intent_id (the overview's recent actions, the audit
-- area's detail, the sweep of abandoned actions): index it rather than scan the log.
CREATE INDEX audit_log_intent_idx ON ops.audit_log (intent_id) WHERE intent_id IS NOT NULL;
