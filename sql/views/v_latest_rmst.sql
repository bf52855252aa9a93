-- Restricted mean duration of relief (days, up to horizon) per group, latest successful run.
CREATE VIEW results.v_latest_rmst AS
SELECT
    m.run_id,
    m.grouping,
    m.group_value,
    m.horizon,
    m.rmst,
    m.se,
    m.lower,
    m.upper
FROM results.rmst m
JOIN results.v_latest_run r ON r.run_id = m.run_id
