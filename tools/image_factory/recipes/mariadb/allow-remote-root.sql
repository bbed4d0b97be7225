-- Clients on the container network log in as root without a password, as the upstream
-- image allows with MARIADB_ALLOW_EMPTY_ROOT_PASSWORD.
CREATE USER IF NOT EXISTS 'root'@'%';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
