-- Cox model coefficients and hazard ratios (HR > 1: relief ends sooner), latest
-- successful run. The model's n and events of 1..10 are NULL with <column>_suppressed
-- true; events is also hidden when n - events is 1..10.
CREATE VIEW results.v_latest_cox AS
SELECT
    c.run_id,
    c.model,
    c.term,
    c.coef,
    c.se,
    c.hr,
    c.hr_lower,
    c.hr_upper,
    c.z,
    c.p,
    CASE WHEN c.n BETWEEN 1 AND 10 THEN NULL ELSE c.n END AS n,
    (c.n BETWEEN 1 AND 10) AS n_suppressed,
    CASE WHEN c.events BETWEEN 1 AND 10 OR c.n - c.events BETWEEN 1 AND 10
         THEN NULL ELSE c.events END AS events,
    (c.events BETWEEN 1 AND 10 OR c.n - c.events BETWEEN 1 AND 10) AS events_suppressed
FROM results.cox c
JOIN results.v_latest_run r ON r.run_id = c.run_id
