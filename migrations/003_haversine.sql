-- Great-circle distance in metres between two WGS84 points, for the fleet questions (stationary, distance).
-- A plain SQL function so the planner inlines it; IMMUTABLE and PARALLEL SAFE because it only computes.
CREATE FUNCTION haversine_m(lat1 double precision, lon1 double precision,
                            lat2 double precision, lon2 double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN 2 * 6371000.0 * asin(sqrt(
    power(sin(radians(lat2 - lat1) / 2), 2)
    + cos(radians(lat1)) * cos(radians(lat2)) * power(sin(radians(lon2 - lon1) / 2), 2)
));
