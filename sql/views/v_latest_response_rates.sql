-- Responders (relief reached) among episodes that could respond, per group, latest
-- successful run. Small cells: episodes, with_baseline and responders of 1..10 are NULL
-- with <column>_suppressed true. Within a row, with_baseline is hidden when
-- episodes - with_baseline is 1..10 and responders when with_baseline - responders is;
-- response_rate is NULL whenever either of its counts is hidden. Across rows, as in
-- v_latest_survival_summary: a lone hidden cell in a grouping takes the next smallest with it.
CREATE VIEW results.v_latest_response_rates AS
WITH cells AS (
    SELECT
        x.run_id, x.grouping, x.group_value, x.episodes, x.with_baseline, x.responders,
        x.response_rate,
        CASE WHEN x.episodes BETWEEN 1 AND 10 THEN 1 ELSE 0 END AS small_episodes,
        CASE WHEN x.with_baseline BETWEEN 1 AND 10
               OR x.episodes - x.with_baseline BETWEEN 1 AND 10
             THEN 1 ELSE 0 END AS small_with_baseline,
        CASE WHEN x.responders BETWEEN 1 AND 10
               OR x.with_baseline - x.responders BETWEEN 1 AND 10
             THEN 1 ELSE 0 END AS small_responders
    FROM results.response_rates x
    JOIN results.v_latest_run r ON r.run_id = x.run_id
),
ranked AS (
    SELECT
        c.*,
        SUM(c.small_episodes) OVER (PARTITION BY c.grouping) AS hidden_episodes,
        ROW_NUMBER() OVER (
            PARTITION BY c.grouping, c.small_episodes ORDER BY c.episodes, c.group_value
        ) AS rank_episodes,
        SUM(c.small_with_baseline) OVER (PARTITION BY c.grouping) AS hidden_with_baseline,
        ROW_NUMBER() OVER (
            PARTITION BY c.grouping, c.small_with_baseline ORDER BY c.with_baseline, c.group_value
        ) AS rank_with_baseline,
        SUM(c.small_responders) OVER (PARTITION BY c.grouping) AS hidden_responders,
        ROW_NUMBER() OVER (
            PARTITION BY c.grouping, c.small_responders ORDER BY c.responders, c.group_value
        ) AS rank_responders
    FROM cells c
),
flags AS (
    SELECT
        k.*,
        CASE WHEN k.small_episodes = 1
               OR (k.grouping <> 'all' AND k.hidden_episodes = 1 AND k.rank_episodes = 1)
             THEN 1 ELSE 0 END AS hide_episodes,
        CASE WHEN k.small_with_baseline = 1
               OR (k.grouping <> 'all' AND k.hidden_with_baseline = 1 AND k.rank_with_baseline = 1)
             THEN 1 ELSE 0 END AS hide_with_baseline,
        CASE WHEN k.small_responders = 1
               OR (k.grouping <> 'all' AND k.hidden_responders = 1 AND k.rank_responders = 1)
             THEN 1 ELSE 0 END AS hide_responders
    FROM ranked k
)
SELECT
    f.run_id,
    f.grouping,
    f.group_value,
    CASE WHEN f.hide_episodes = 1 THEN NULL ELSE f.episodes END AS episodes,
    (f.hide_episodes = 1) AS episodes_suppressed,
    CASE WHEN f.hide_with_baseline = 1 THEN NULL ELSE f.with_baseline END AS with_baseline,
    (f.hide_with_baseline = 1) AS with_baseline_suppressed,
    CASE WHEN f.hide_responders = 1 THEN NULL ELSE f.responders END AS responders,
    (f.hide_responders = 1) AS responders_suppressed,
    CASE WHEN f.hide_with_baseline = 1 OR f.hide_responders = 1
         THEN NULL ELSE f.response_rate END AS response_rate
FROM flags f
