-- haversine_m without PostgreSQL's float errors, which a single stored reading could raise for every fleet
-- question: squaring a difference of ~1e-200 degrees underflows ("value out of range: underflow"), and rounding can
-- put asin's argument a hair above 1 ("input is out of range"). Differences below 1e-9 degrees (0.1 mm) count as
-- none, so every product stays above the smallest double; the argument is capped at 1.
CREATE OR REPLACE FUNCTION haversine_m(lat1 double precision, lon1 double precision,
                                       lat2 double precision, lon2 double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN 2 * 6371000.0 * asin(least(1.0, sqrt(
    power(sin(radians(CASE WHEN abs(lat2 - lat1) < 1e-9 THEN 0 ELSE lat2 - lat1 END) / 2), 2)
    + cos(radians(lat1)) * cos(radians(lat2))
      * power(sin(radians(CASE WHEN abs(lon2 - lon1) < 1e-9 THEN 0 ELSE lon2 - lon1 END) / 2), 2)
)));
