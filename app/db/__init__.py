"""Database access: the pool, the migrations and every SQL statement; the only package that executes SQL."""
