#!/bin/sh
# Runs once, when the postgres image initialises an empty data directory (docker-entrypoint-initdb.d).
# One database per service, each owned by $POSTGRES_USER: services share no tables.
set -eu
for db in ${QUNZHU_DATABASES:-qunzhu_membership qunzhu_content qunzhu_engagement qunzhu_gateway}; do
    exists="$(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$db'")"
    if [ "$exists" != 1 ]; then
        echo "creating database $db"
        psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
            -c "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\""
    fi
done
