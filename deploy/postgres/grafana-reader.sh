#!/usr/bin/env bash
# Run by the postgres image when it makes a new database (docker-entrypoint-initdb.d):
# the read-only user Grafana's PostgreSQL data source logs in as. It may read what the
# sink's user creates, now and later (the tables and views of the alembic migrations,
# which hold no personal data: README, Security), and change nothing.
# A stack whose database was made before this script: run it once by hand,
#   docker compose exec postgres bash /docker-entrypoint-initdb.d/grafana-reader.sh
set -euo pipefail
password=$(cat "${GRAFANA_DATABASE_PASSWORD_FILE:-/run/secrets/grafana_database_password}")
owner=${POSTGRES_USER:-onestop}
database=${POSTGRES_DB:-$owner}
psql -v ON_ERROR_STOP=1 --username "$owner" --dbname "$database" \
    -v password="$password" -v owner="$owner" -v database="$database" <<'SQL'
SELECT format('CREATE ROLE grafana_reader LOGIN PASSWORD %L', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'grafana_reader') \gexec
ALTER ROLE grafana_reader SET default_transaction_read_only = on;
GRANT CONNECT ON DATABASE :"database" TO grafana_reader;
GRANT USAGE ON SCHEMA public TO grafana_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO grafana_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO grafana_reader;
SQL
