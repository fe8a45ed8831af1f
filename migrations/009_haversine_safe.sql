-- haversine_m without PostgreSQL's float errors, which a single stored reading could raise for every fleet
-- question: squaring a difference of ~1e-200 degrees underflows ("value out of range: underflow"), and rounding
-- can put asin's argument a hair above 1 ("input is out of range"). Strict arithmetic only (a CASE or least()
-- made the whole-fleet distance 4x slower), with float8 constants (a numeric one is cast per row):
-- - a difference d is snapped as (d + 1e-9) - 1e-9: below ~1e-25 degrees it becomes 0, above it moves by at most
--   2e-25 degrees (1e-20 m), so every square stays far above the smallest double;
-- - asin's argument is scaled by 1 - 1e-15, which keeps a rounding error of a few ulps below 1. A distance moves
--   by about 1e-15 of itself, except near the antipode, where asin is steep: there up to 0.6 m short.
CREATE OR REPLACE FUNCTION haversine_m(lat1 double precision, lon1 double precision,
                                       lat2 double precision, lon2 double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN 12742000::float8 * asin((1::float8 - 1e-15::float8) * sqrt(
    power(sin(radians((lat2 - lat1 + 1e-9::float8) - 1e-9::float8) / 2), 2)
    + cos(radians(lat1)) * cos(radians(lat2)) * power(sin(radians((lon2 - lon1 + 1e-9::float8) - 1e-9::float8) / 2), 2)
));
