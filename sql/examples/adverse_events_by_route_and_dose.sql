-- Adverse-event rates per 100 administrations by route and dose band (suppressed cells NULL).
SELECT e.event, e.route, e.dose_band, e.administrations, e.with_event,
       100 * e.rate AS per_100_administrations
FROM results.v_latest_adverse_event_rates e
ORDER BY e.event, e.route, e.dose_band
