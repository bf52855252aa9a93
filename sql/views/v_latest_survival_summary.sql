-- Median duration of relief (days) per group, latest successful run.
-- Small cells: n and events of 1..10 are NULL with <column>_suppressed true. events is
-- also hidden when n - events (the censored episodes) is 1..10. Complementary: within a
-- grouping other than 'all', when exactly one cell of a column is hidden, the next
-- smallest cell of that column is hidden too, so it cannot be recovered from the total.
CREATE VIEW results.v_latest_survival_summary AS
WITH cells AS (
    SELECT
        s.run_id, s.grouping, s.group_value, s.n, s.events,
        s.median, s.median_lower, s.median_upper,
        CASE WHEN s.n BETWEEN 1 AND 10 THEN 1 ELSE 0 END AS small_n,
        CASE WHEN s.events BETWEEN 1 AND 10 OR s.n - s.events BETWEEN 1 AND 10
             THEN 1 ELSE 0 END AS small_events
    FROM results.survival_summary s
    JOIN results.v_latest_run r ON r.run_id = s.run_id
),
ranked AS (
    SELECT
        c.*,
        SUM(c.small_n) OVER (PARTITION BY c.grouping) AS hidden_n,
        ROW_NUMBER() OVER (PARTITION BY c.grouping, c.small_n ORDER BY c.n, c.group_value) AS rank_n,
        SUM(c.small_events) OVER (PARTITION BY c.grouping) AS hidden_events,
        ROW_NUMBER() OVER (
            PARTITION BY c.grouping, c.small_events ORDER BY c.events, c.group_value
        ) AS rank_events
    FROM cells c
),
flags AS (
    SELECT
        k.*,
        CASE WHEN k.small_n = 1
               OR (k.grouping <> 'all' AND k.hidden_n = 1 AND k.rank_n = 1)
             THEN 1 ELSE 0 END AS hide_n,
        CASE WHEN k.small_events = 1
               OR (k.grouping <> 'all' AND k.hidden_events = 1 AND k.rank_events = 1)
             THEN 1 ELSE 0 END AS hide_events
    FROM ranked k
)
SELECT
    f.run_id,
    f.grouping,
    f.group_value,
    CASE WHEN f.hide_n = 1 THEN NULL ELSE f.n END AS n,
    (f.hide_n = 1) AS n_suppressed,
    CASE WHEN f.hide_events = 1 THEN NULL ELSE f.events END AS events,
    (f.hide_events = 1) AS events_suppressed,
    f.median,
    f.median_lower,
    f.median_upper
FROM flags f
