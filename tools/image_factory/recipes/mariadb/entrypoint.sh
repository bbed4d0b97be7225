#!/bin/sh
set -e
if [ "$1" = mariadbd ]; then
    shift
    mkdir -p /run/mysqld
    chown mysql:mysql /run/mysqld
    if [ ! -d /var/lib/mysql/mysql ]; then
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db >/dev/null
    fi
    exec mariadbd --user=mysql --bind-address=0.0.0.0 --skip-name-resolve \
        --init-file=/etc/mysql/allow-remote-root.sql "$@"
fi
exec "$@"
