-- The newest run whose status is 'success' (by finished_at; run_id breaks ties).
-- Every other v_latest_* view joins this one, so results of failed or still-running
-- runs never show, and a re-run that replaces a run id's rows shows only when it succeeds.
-- row_counts is left out: per-stage counts (e.g. quarantined rows) are not suppressed.
CREATE VIEW results.v_latest_run AS
SELECT
    m.run_id,
    m.dag_run_id,
    m.trigger,
    m.parameters,
    m.input_fingerprint,
    m.code_version,
    m.timings,
    m.report_path,
    m.started_at,
    m.finished_at
FROM results.model_runs m
WHERE m.run_id = (
    SELECT s.run_id
    FROM results.model_runs s
    WHERE s.status = 'success'
    ORDER BY s.finished_at DESC, s.run_id DESC
    LIMIT 1
)
