-- What makes relief last longer? Hazard ratios of the main Cox model (HR < 1: relief
-- lasts longer), strongest evidence first.
SELECT c.term, c.hr, c.hr_lower, c.hr_upper, c.p
FROM results.v_latest_cox c
WHERE c.model = 'main'
ORDER BY c.p
