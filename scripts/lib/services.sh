# Makes sure PostgreSQL, Redis and RabbitMQ answer; starts each that does not, and fails
# loudly when one cannot be brought up. Sourced by scripts/test.sh.

postgres_answers() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_answers() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }
# An AMQP 0-9-1 handshake: the broker answers the protocol header with Connection.Start,
# a method frame (type 1), so a port that merely accepts TCP does not count.
rabbitmq_answers() {
  python3 - <<'PY' 2>/dev/null
import socket, sys
try:
    with socket.create_connection(("127.0.0.1", 5672), timeout=3) as connection:
        connection.sendall(b"AMQP\x00\x00\x09\x01")
        frame = connection.recv(1)
    sys.exit(0 if frame == b"\x01" else 1)
except OSError:
    sys.exit(1)
PY
}

start_postgres() { pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start; }
start_redis() {
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
}
start_rabbitmq() { rabbitmq-server -detached; }

# ensure_service NAME CHECK START DEADLINE_SECONDS
ensure_service() {
  local name=$1 check=$2 start=$3 deadline=$4
  if "$check"; then
    echo "  $name: up"
    return 0
  fi
  echo "  $name: not answering, starting it"
  if ! "$start" >/dev/null 2>&1; then
    echo "  $name: the start command failed" >&2
  fi
  local waited=0
  until "$check"; do
    if [ "$waited" -ge "$deadline" ]; then
      echo "FATAL: $name does not answer after ${deadline}s; the tests need the real server." >&2
      echo "       Start it by hand ($start in scripts/lib/services.sh) and rerun." >&2
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  echo "  $name: up after ${waited}s"
}

ensure_services() {
  ensure_service PostgreSQL postgres_answers start_postgres 60
  ensure_service Redis redis_answers start_redis 30
  ensure_service RabbitMQ rabbitmq_answers start_rabbitmq 120
}
