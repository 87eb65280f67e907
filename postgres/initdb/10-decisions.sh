#!/bin/sh
# Creates the decision records' own role and database on the Compose `postgres` service, apart from
# MLflow's: the API writes records as DECISIONS_DB_USER into DECISIONS_DB_NAME and can read nothing
# else. The postgres image runs this once, when it initialises an empty data volume; on a volume
# created before, run it by hand: `docker-compose exec postgres sh /docker-entrypoint-initdb.d/10-decisions.sh`.
set -eu

: "${DECISIONS_DB_USER:?set DECISIONS_DB_USER}"
: "${DECISIONS_DB_PASSWORD:?set DECISIONS_DB_PASSWORD}"
: "${DECISIONS_DB_NAME:?set DECISIONS_DB_NAME}"

# NB: psql (15 or newer) reads the three from the environment itself (\getenv): the password never
# appears on a command line, which any user on the host can read (ps, /proc/*/cmdline) during init.
# Its :"name" and :'text' interpolation quotes the values, whatever characters they hold.
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" <<'SQL'
\getenv user DECISIONS_DB_USER
\getenv password DECISIONS_DB_PASSWORD
\getenv db DECISIONS_DB_NAME
CREATE ROLE :"user" LOGIN PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"user";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
