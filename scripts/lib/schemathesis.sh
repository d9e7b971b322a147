# shellcheck shell=bash
# API fuzzing: schemathesis against the OpenAPI document of a running demo server, with an
# admin's access token and the webhook secret, checking that no answer is a 5xx and every
# answer matches the documented schema, status and content type.
# Sourced by scripts/test.sh, which provides CARGO_TARGET_DIR, SCHEMATHESIS and `fail`.
#
# Left out: Logout and Refresh (they would end the token's own login session),
# StartTraining (each call trains a model: CPU, not API surface), WatchTrainingRun (a
# stream that stays open while a run lasts) and WatchSegmentChanges (a stream that stays
# open until the client leaves).

run_schemathesis() {
  local binary="$CARGO_TARGET_DIR/debug/crmbet" scratch log address password token status=0
  [ -x "$binary" ] || fail "no crmbet binary at $binary" "cargo test builds it; run that first"
  scratch=$(mktemp -d)
  log="$scratch/demo.log"
  DATABASE_URL="sqlite://$scratch/crmbet.db?mode=rwc" CRMBET_WAREHOUSE_DIR="$scratch/warehouse" \
    CRMBET_LOG=warn CRMBET_RATE_LIMIT_PER_HOUR=10000000 \
    CRMBET_RATE_LIMIT_PER_PRINCIPAL_PER_HOUR=10000000 \
    CRMBET_WEBHOOK_SECRET=schemathesis-webhook-secret-0123456789 \
    "$binary" demo --listen 127.0.0.1:0 --players 300 --transactions 12000 >"$log" 2>&1 &
  local demo_pid=$!
  for _ in $(seq 1 600); do
    grep -q '^crmbet listening on ' "$log" && break
    kill -0 "$demo_pid" 2>/dev/null || break
    sleep 0.2
  done
  address=$(sed -n 's|^crmbet listening on http://\([^ ]*\).*|\1|p' "$log")
  password=$(sed -n 's/^admin password: //p' "$log")
  if [ -z "$address" ] || [ -z "$password" ]; then
    kill "$demo_pid" 2>/dev/null || true
    cat "$log" >&2
    fail "the demo server did not start for schemathesis" "see its log above"
  fi
  token=$(curl -sf "http://$address/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"username\": \"admin\", \"password\": \"$password\"}" |
    sed -n 's/.*"access_token": *"\([^"]*\)".*/\1/p')
  echo "+ schemathesis run http://$address/api-docs/openapi.json (token of the demo admin)"
  # From the scratch folder, so its .schemathesis cache stays out of the clone.
  (cd "$scratch" && "$SCHEMATHESIS" run "http://$address/api-docs/openapi.json" --url "http://$address" \
    -H "Authorization: Bearer $token" \
    -H "X-Webhook-Secret: schemathesis-webhook-secret-0123456789" \
    --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
    --max-examples 30 --seed 1 \
    --exclude-path /api/v1/auth/logout --exclude-path /api/v1/auth/refresh \
    --exclude-operation-id TrainingService_StartTraining \
    --exclude-operation-id TrainingService_WatchTrainingRun \
    --exclude-operation-id UserService_WatchSegmentChanges) || status=$?
  kill "$demo_pid" 2>/dev/null || true
  wait "$demo_pid" 2>/dev/null || true
  rm -rf "$scratch"
  [ "$status" -eq 0 ] || fail "schemathesis found failures (exit $status)" \
    "see the failing operations above; the document is built in crates/crmbet-server/src/openapi.rs"
}
