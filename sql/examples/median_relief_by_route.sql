-- How long does relief last after each route? Median days (95% CI), latest successful run.
SELECT s.group_value AS route, s.n, s.events, s.median, s.median_lower, s.median_upper
FROM results.v_latest_survival_summary s
WHERE s.grouping = 'route'
ORDER BY s.median DESC
