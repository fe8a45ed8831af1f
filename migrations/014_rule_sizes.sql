-- Bounds on alert rules (issue 20, N9): how many positions each rule's geofence holds, so that the total over
-- every rule can be checked in the transaction that adds or replaces one. Other kinds hold none.
ALTER TABLE alert_rules ADD COLUMN positions integer NOT NULL DEFAULT 0 CHECK (positions >= 0);
UPDATE alert_rules
SET positions = (
    SELECT count(*)
    FROM jsonb_path_query(condition, CASE condition #>> '{geometry,type}'
        WHEN 'Polygon' THEN '$.geometry.coordinates[*][*]'
        ELSE '$.geometry.coordinates[*][*][*]' END::jsonpath)
)
WHERE kind = 'geofence';
