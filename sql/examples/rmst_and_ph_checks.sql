-- Mean days of relief within the horizon by treatment pattern, next to the PH test of the
-- main model's is_series term (RMST needs no PH assumption; HRs do).
SELECT m.group_value AS pattern, m.horizon, m.rmst, m.lower, m.upper,
       t.p AS ph_p, t.violated AS ph_violated
FROM results.v_latest_rmst m
LEFT JOIN results.v_latest_ph_test t ON t.model = 'main' AND t.term = 'is_series'
WHERE m.grouping = 'pattern'
ORDER BY m.rmst DESC
