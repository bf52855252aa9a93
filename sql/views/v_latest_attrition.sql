-- Cohort attrition: episodes remaining after each inclusion step and how many the step
-- excluded, latest successful run. Counts of 1..10 are NULL with <column>_suppressed true.
-- Because remaining(step) = remaining(step - 1) - excluded(step), a small step hides its
-- remaining too and the next step's excluded (for the last step: the previous step's
-- remaining and excluded), so no hidden count follows from the shown ones by subtraction.
CREATE VIEW results.v_latest_attrition AS
WITH cells AS (
    SELECT
        a.run_id, a.step, a.description, a.remaining, a.excluded,
        CASE WHEN a.excluded BETWEEN 1 AND 10 OR a.remaining BETWEEN 1 AND 10
             THEN 1 ELSE 0 END AS small
    FROM results.attrition a
    JOIN results.v_latest_run r ON r.run_id = a.run_id
),
neighbours AS (
    SELECT
        c.*,
        COALESCE(LAG(c.small) OVER (ORDER BY c.step), 0) AS previous_small,
        COALESCE(LEAD(c.small) OVER (ORDER BY c.step), 0) AS next_small,
        COALESCE(LEAD(c.step) OVER (ORDER BY c.step), 0) AS next_step,
        MAX(c.step) OVER () AS last_step
    FROM cells c
),
flags AS (
    SELECT
        n.*,
        CASE WHEN n.small = 1 OR n.previous_small = 1
               OR (n.next_small = 1 AND n.next_step = n.last_step)
             THEN 1 ELSE 0 END AS hide_excluded,
        CASE WHEN n.small = 1 OR (n.next_small = 1 AND n.next_step = n.last_step)
             THEN 1 ELSE 0 END AS hide_remaining
    FROM neighbours n
)
SELECT
    f.run_id,
    f.step,
    f.description,
    CASE WHEN f.hide_remaining = 1 THEN NULL ELSE f.remaining END AS remaining,
    (f.hide_remaining = 1) AS remaining_suppressed,
    CASE WHEN f.hide_excluded = 1 THEN NULL ELSE f.excluded END AS excluded,
    (f.hide_excluded = 1) AS excluded_suppressed
FROM flags f
