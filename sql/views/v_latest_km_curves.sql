-- Kaplan-Meier curves (survival = probability relief still lasts) per group, latest
-- successful run. at_risk, events and censored of 1..10 are NULL with
-- <column>_suppressed true; the survival estimate and its interval are published as is.
CREATE VIEW results.v_latest_km_curves AS
SELECT
    k.run_id,
    k.grouping,
    k.group_value,
    k.time,
    k.survival,
    k.lower,
    k.upper,
    CASE WHEN k.at_risk BETWEEN 1 AND 10 THEN NULL ELSE k.at_risk END AS at_risk,
    (k.at_risk BETWEEN 1 AND 10) AS at_risk_suppressed,
    CASE WHEN k.events BETWEEN 1 AND 10 THEN NULL ELSE k.events END AS events,
    (k.events BETWEEN 1 AND 10) AS events_suppressed,
    CASE WHEN k.censored BETWEEN 1 AND 10 THEN NULL ELSE k.censored END AS censored,
    (k.censored BETWEEN 1 AND 10) AS censored_suppressed
FROM results.km_curves k
JOIN results.v_latest_run r ON r.run_id = k.run_id
