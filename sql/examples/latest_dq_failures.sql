-- Which data-quality rules failed in the latest successful run, worst first.
SELECT d.delivery_id, d.source_table, d.rule_id, d.rows_checked, d.rows_failed,
       d.rows_failed_suppressed
FROM results.v_latest_dq_summary d
WHERE NOT d.success
ORDER BY d.rows_failed DESC, d.rule_id
