#!/bin/sh
# Entrypoint of the postgres stand-in: on an empty $PGDATA, make a cluster whose superuser is
# $POSTGRES_USER with $POSTGRES_PASSWORD (scram-sha-256 over TCP, trust on the local socket, as
# the official image does), a database $POSTGRES_DB, and run /docker-entrypoint-initdb.d's
# scripts; then run the command (postgres).
set -eu

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "docker-entrypoint.sh: POSTGRES_PASSWORD is not set: refusing to make a cluster without one" >&2
        exit 1
    fi
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    if [ "$POSTGRES_DB" != "postgres" ]; then
        # Single-user mode: nothing listens until the database exists. "" doubles a quote.
        db="$(printf '%s' "$POSTGRES_DB" | sed 's/"/""/g')"
        echo "CREATE DATABASE \"$db\"" | postgres --single -D "$PGDATA" postgres >/dev/null
    fi
    # As the official image does: the scripts in /docker-entrypoint-initdb.d (the decision
    # records' role and database, in this project), run once on the new cluster by a server that
    # listens on the local socket only.
    if [ -n "$(ls -A /docker-entrypoint-initdb.d 2>/dev/null)" ]; then
        pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
        for script in /docker-entrypoint-initdb.d/*; do
            case "$script" in
                *.sh) echo "docker-entrypoint.sh: running $script"; sh "$script" ;;
                *.sql) echo "docker-entrypoint.sh: running $script"; psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -f "$script" ;;
                *) echo "docker-entrypoint.sh: ignoring $script" ;;
            esac
        done
        pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    fi
    echo "docker-entrypoint.sh: made a cluster in $PGDATA for user $POSTGRES_USER, database $POSTGRES_DB"
fi

exec "$@"
