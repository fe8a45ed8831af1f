#!/usr/bin/env bash
# Logical backup and restore of the fleet database, the way TimescaleDB asks for it (pg_dump's custom format; on
# restore: the extension first, then timescaledb_pre_restore(), pg_restore, timescaledb_post_restore()).
# Usage: scripts/backup.sh dump DATABASE_URL FILE
#        scripts/backup.sh restore FILE DATABASE_URL   (an empty database, same PostgreSQL and TimescaleDB versions)
# URLs are libpq URLs; a password in one is better put in ~/.pgpass or PGPASSWORD than on the command line.
set -euo pipefail

say() { printf 'backup: %s\n' "$*" >&2; }

case ${1:-} in
    dump)
        url=${2:?usage: backup.sh dump DATABASE_URL FILE}
        file=${3:?usage: backup.sh dump DATABASE_URL FILE}
        # The columnstore's compressed chunks are dumped as they are: nothing to decompress first.
        pg_dump --format=custom --file="$file" --dbname="$url"
        say "dumped to $file ($(du -h "$file" | cut -f1))"
        ;;
    restore)
        file=${2:?usage: backup.sh restore FILE DATABASE_URL}
        url=${3:?usage: backup.sh restore FILE DATABASE_URL}
        psql --quiet -v ON_ERROR_STOP=1 --dbname="$url" \
            -c "CREATE EXTENSION IF NOT EXISTS timescaledb" -c "SELECT timescaledb_pre_restore()" >/dev/null
        # Not in parallel (-j): TimescaleDB's catalog must be restored in order. The dump's own CREATE EXTENSION
        # says IF NOT EXISTS; any error fails the run.
        pg_restore --no-owner --exit-on-error --dbname="$url" "$file"
        psql --quiet -v ON_ERROR_STOP=1 --dbname="$url" -c "SELECT timescaledb_post_restore()" >/dev/null
        say "restored $file"
        ;;
    *)
        echo "usage: scripts/backup.sh dump DATABASE_URL FILE | restore FILE DATABASE_URL" >&2
        exit 2
        ;;
esac
