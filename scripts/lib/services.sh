# shellcheck shell=bash
# Makes sure PostgreSQL, Redis and RabbitMQ answer on their default local ports; starts
# each one that does not, polls it with a deadline, and fails loudly when it cannot be
# brought up. The tests always use the real servers: nothing here is ever skipped.
# Sourced by scripts/test.sh, which provides `fail`.

POSTGRES_URL_FOR_CHECK="postgres://postgres@127.0.0.1:5432/postgres"

postgres_answers() { pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1; }

redis_answers() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

# An AMQP 0-9-1 handshake: the broker answers the protocol header with Connection.Start,
# a method frame (type 1). A port that merely accepts TCP, as it does while RabbitMQ is
# still booting, does not count.
rabbitmq_answers() {
  python3 - >/dev/null 2>&1 <<'PY'
import socket
import sys

try:
    with socket.create_connection(("127.0.0.1", 5672), timeout=3) as connection:
        connection.settimeout(3)
        connection.sendall(b"AMQP\x00\x00\x09\x01")
        frame_type = connection.recv(1)
except OSError:
    sys.exit(1)
sys.exit(0 if frame_type == b"\x01" else 1)
PY
}

start_postgres() {
  local directory version=""
  for directory in /etc/postgresql/*/main; do
    [ -d "$directory" ] && version=$(basename "$(dirname "$directory")")
  done
  [ -n "$version" ] || { echo "no cluster under /etc/postgresql/*/main" >&2; return 1; }
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
}

start_redis() {
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
}

start_rabbitmq() { rabbitmq-server -detached; }

# ensure_service NAME CHECK_FUNCTION START_FUNCTION DEADLINE_SECONDS
ensure_service() {
  local name=$1 check=$2 start=$3 deadline_seconds=$4
  if "$check"; then
    echo "  $name: up"
    return 0
  fi
  echo "  $name: not answering, starting it ($start in scripts/lib/services.sh)"
  local began=$SECONDS start_log
  start_log=$(mktemp)
  # Output goes to a file, not a pipe: a daemon that keeps the descriptor must not block us.
  if ! "$start" >"$start_log" 2>&1; then
    echo "  $name: the start command failed (polling anyway, it may be starting already):"
    sed 's/^/    /' "$start_log"
  fi
  rm -f "$start_log"
  until "$check"; do
    if [ $((SECONDS - began)) -ge "$deadline_seconds" ]; then
      fail "$name does not answer ${deadline_seconds}s after being started; the tests need the real server" \
        "start it by hand ($start in scripts/lib/services.sh shows the command), check its log, and rerun"
    fi
    sleep 1
  done
  echo "  $name: up after $((SECONDS - began))s"
}

require_commands() {
  local missing=() command_name
  for command_name in "$@"; do
    command -v "$command_name" >/dev/null 2>&1 || missing+=("$command_name")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    fail "missing commands: ${missing[*]}" \
      "install PostgreSQL, Redis and RabbitMQ (apt-get install -y postgresql redis-server rabbitmq-server)"
  fi
}

ensure_services() {
  require_commands pg_isready pg_ctlcluster psql redis-cli redis-server rabbitmq-server python3
  ensure_service PostgreSQL postgres_answers start_postgres 60
  local login_error
  if ! login_error=$(psql "$POSTGRES_URL_FOR_CHECK" -X -q -t -c 'select 1' 2>&1 >/dev/null); then
    fail "PostgreSQL answers but $POSTGRES_URL_FOR_CHECK cannot log in: $login_error" \
      "the store tests need trust (or passwordless) auth for user postgres on 127.0.0.1"
  fi
  ensure_service Redis redis_answers start_redis 30
  ensure_service RabbitMQ rabbitmq_answers start_rabbitmq 120
}
