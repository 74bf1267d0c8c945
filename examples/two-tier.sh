#!/bin/sh
# Seed 002's two-tier story with ctnet: wordpress reaches its database by the name mysql_app on the user
# network my_net. Small socat stand-ins play mysql and wordpress (see examples/two-tier.yaml for the lab file).
# Run as root after scripts/setup.sh, from the repository or copied anywhere (ctnet is then taken from
# PATH). Removes everything it made when it ends.
set -u
# this clone's ctnet when run from it, else the one on PATH (scripts/setup.sh links it there)
CTNET="$(dirname "$0")/../bin/ctnet"
[ -x "$CTNET" ] || CTNET=$(command -v ctnet) || { echo "$0: ctnet is not on PATH (run scripts/setup.sh)" >&2; exit 1; }
ctnet() { "$CTNET" "$@"; }
# commands in bold on a terminal; plain when piped or NO_COLOR is set
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }; else say() { printf '\n$ %s\n' "$*"; }; fi

cleanup() {
  ctnet rm -f wp_app mysql_app >/dev/null 2>&1
  ctnet net rm my_net >/dev/null 2>&1
}
trap cleanup EXIT INT TERM
cleanup

say ctnet net create my_net; ctnet net create my_net
say ctnet run -d --name mysql_app --hostname mysql-app --net my_net -e MYSQL_DATABASE=wpdb -e MYSQL_USER=wpuser -- socat …3306…
ctnet run -d --name mysql_app --hostname mysql-app --net my_net -e MYSQL_DATABASE=wpdb -e MYSQL_USER=wpuser -- \
  socat TCP-LISTEN:3306,fork,reuseaddr 'SYSTEM:echo mysql stand-in on $(hostname) - database $MYSQL_DATABASE for user $MYSQL_USER'
say ctnet run -d --name wp_app --hostname wp-app --net my_net -e WORDPRESS_DB_HOST=mysql_app:3306 -e WORDPRESS_DB_NAME=wpdb -- socat …80…
ctnet run -d --name wp_app --hostname wp-app --net my_net -e WORDPRESS_DB_HOST=mysql_app:3306 -e WORDPRESS_DB_NAME=wpdb -- \
  socat TCP-LISTEN:80,fork,reuseaddr 'SYSTEM:echo wordpress stand-in - database at $WORDPRESS_DB_HOST; socat -u TCP\:$WORDPRESS_DB_HOST -'
# the stand-ins start in the background: wait until wordpress listens
for _ in 1 2 3 4 5 6 7 8 9 10; do ctnet exec wp_app ss -Hltn 'sport = :80' | grep -q . && break; sleep 0.2; done
say "ctnet exec wp_app getent hosts mysql_app    # answered by ctnet's DNS server on my_net"; ctnet exec wp_app getent hosts mysql_app
say "ctnet exec wp_app socat -u TCP:127.0.0.1:80 -    # wordpress asks mysql_app:3306"
ctnet exec wp_app socat -u TCP:127.0.0.1:80 -
say "brctl show    # like the seed: one bridge per network, one veth per container"
if command -v brctl >/dev/null 2>&1; then brctl show; else ip -br link show type bridge; fi
exit 0
