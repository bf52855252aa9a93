-- Data-quality checks (dq.validation_results) of the latest successful run: one row per
-- delivery, source table and rule. rows_checked and rows_failed of 1..10 are NULL with
-- <column>_suppressed true (rows_failed also when rows_checked - rows_failed is 1..10);
-- success says whether the rule passed.
CREATE VIEW results.v_latest_dq_summary AS
SELECT
    v.run_id,
    v.delivery_id,
    v.source_table,
    v.rule_id,
    CASE WHEN v.rows_checked BETWEEN 1 AND 10 THEN NULL ELSE v.rows_checked END AS rows_checked,
    (v.rows_checked BETWEEN 1 AND 10) AS rows_checked_suppressed,
    CASE WHEN v.rows_failed BETWEEN 1 AND 10 OR v.rows_checked - v.rows_failed BETWEEN 1 AND 10
         THEN NULL ELSE v.rows_failed END AS rows_failed,
    (v.rows_failed BETWEEN 1 AND 10 OR v.rows_checked - v.rows_failed BETWEEN 1 AND 10)
        AS rows_failed_suppressed,
    v.success
FROM dq.validation_results v
JOIN results.v_latest_run r ON r.run_id = v.run_id
