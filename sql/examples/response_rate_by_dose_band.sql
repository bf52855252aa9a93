-- Share of episodes reaching relief by dose band (mg/kg); NULL rates are suppressed cells.
SELECT r.group_value AS dose_band, r.episodes, r.responders, r.response_rate,
       r.with_baseline_suppressed, r.responders_suppressed
FROM results.v_latest_response_rates r
WHERE r.grouping = 'dose_band'
ORDER BY r.group_value
