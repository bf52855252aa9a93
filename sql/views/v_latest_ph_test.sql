-- Proportional-hazards diagnostics (Grambsch-Therneau, per term and GLOBAL), latest
-- successful run. violated is true when p < 0.05.
CREATE VIEW results.v_latest_ph_test AS
SELECT
    t.run_id,
    t.model,
    t.term,
    t.statistic,
    t.df,
    t.p,
    t.violated
FROM results.ph_test t
JOIN results.v_latest_run r ON r.run_id = t.run_id
