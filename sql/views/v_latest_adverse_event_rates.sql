-- Share of administrations followed by each adverse event, by route and dose band
-- (mg/kg), latest successful run. administrations and with_event of 1..10 are NULL with
-- <column>_suppressed true; with_event is also hidden when administrations - with_event
-- is 1..10, and rate whenever either count is hidden.
CREATE VIEW results.v_latest_adverse_event_rates AS
WITH cells AS (
    SELECT
        e.run_id, e.route, e.dose_band, e.event, e.administrations, e.with_event, e.rate,
        CASE WHEN e.administrations BETWEEN 1 AND 10 THEN 1 ELSE 0 END AS hide_administrations,
        CASE WHEN e.with_event BETWEEN 1 AND 10
               OR e.administrations - e.with_event BETWEEN 1 AND 10
             THEN 1 ELSE 0 END AS hide_with_event
    FROM results.adverse_event_rates e
    JOIN results.v_latest_run r ON r.run_id = e.run_id
)
SELECT
    c.run_id,
    c.route,
    c.dose_band,
    c.event,
    CASE WHEN c.hide_administrations = 1 THEN NULL ELSE c.administrations END AS administrations,
    (c.hide_administrations = 1) AS administrations_suppressed,
    CASE WHEN c.hide_with_event = 1 THEN NULL ELSE c.with_event END AS with_event,
    (c.hide_with_event = 1) AS with_event_suppressed,
    CASE WHEN c.hide_administrations = 1 OR c.hide_with_event = 1
         THEN NULL ELSE c.rate END AS rate
FROM cells c
