#!/usr/bin/env bash
# The whole test suite, as CI runs it: services, tools, buf lint, rustfmt, clippy and every
# test, against the real PostgreSQL, Redis and RabbitMQ (started here when they do not
# answer). Run it from anywhere: ./scripts/test.sh
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

# Build outputs and tools live outside the clone, so warm runs in fresh clones reuse them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/crmbet/target}"
TOOLS="${CRMBET_TOOLS_DIR:-$HOME/.cache/crmbet/tools}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

started=$SECONDS
current_section="setup"

section() {
  current_section=$1
  echo
  echo "==== $1 ($((SECONDS - started))s)"
}

# fail WHAT HOW_TO_FIX: stops the run with a message that says what broke and what to do.
fail() {
  {
    echo
    echo "FAILED in '$current_section': $1"
    [ -n "${2:-}" ] && echo "  to fix: $2"
  } >&2
  exit 1
}

# step HOW_TO_FIX COMMAND...: runs COMMAND and fails loudly with HOW_TO_FIX when it fails.
step() {
  local how_to_fix=$1
  shift
  echo "+ $*"
  "$@" || fail "'$*' exited with status $?" "$how_to_fix"
}

# shellcheck source=scripts/lib/services.sh
source "$REPO/scripts/lib/services.sh"
# shellcheck source=scripts/lib/tools.sh
source "$REPO/scripts/lib/tools.sh"
# shellcheck source=scripts/lib/dashboard.sh
source "$REPO/scripts/lib/dashboard.sh"
# shellcheck source=scripts/lib/schemathesis.sh
source "$REPO/scripts/lib/schemathesis.sh"
# shellcheck source=scripts/lib/deploy_check.sh
source "$REPO/scripts/lib/deploy_check.sh"

section "services: PostgreSQL, Redis, RabbitMQ"
ensure_services
export CRMBET_TEST_POSTGRES_URL="${CRMBET_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export CRMBET_TEST_REDIS_URL="${CRMBET_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
export CRMBET_TEST_AMQP_URL="${CRMBET_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"

section "tools: Python venvs (grpcio, moto_server, peer, statsmodels, schemathesis, deploy-check), buf (cached in $TOOLS)"
install_tools
echo "  CRMBET_PYTHON=$CRMBET_PYTHON"
echo "  CRMBET_MOTO_SERVER=$CRMBET_MOTO_SERVER"
echo "  CRMBET_PEER_PYTHON=$CRMBET_PEER_PYTHON"
echo "  CRMBET_STATS_PYTHON=$CRMBET_STATS_PYTHON"
install_chromium

section "the Python peer (lake generator and reference pipeline)"
# shared/ sits beside the repository on development machines; CRMBET_PEER_DIR overrides.
if [ -z "${CRMBET_PEER_DIR:-}" ]; then
  for candidate in "$REPO/../shared/bench/peer" /work/shared/bench/peer; do
    if [ -f "$candidate/gen_lake.py" ]; then
      CRMBET_PEER_DIR=$(cd "$candidate" && pwd)
      break
    fi
  done
fi
[ -n "${CRMBET_PEER_DIR:-}" ] && [ -f "$CRMBET_PEER_DIR/gen_lake.py" ] \
  || fail "the peer folder (gen_lake.py, peer.py) was not found" \
    "set CRMBET_PEER_DIR to the folder that holds shared/bench/peer/gen_lake.py"
export CRMBET_PEER_DIR
echo "  CRMBET_PEER_DIR=$CRMBET_PEER_DIR"

section "deploy files: compose and Kubernetes schemas"
deploy_checks

section "buf lint and build (proto/, third_party/)"
step "fix the proto files named above (run 'buf lint' at the repository root to see them)" \
  "$BUF" lint
step "fix the proto files named above (run 'buf build' at the repository root to see them)" \
  "$BUF" build -o /dev/null

section "dashboard: generated client, lint, types, Vitest, build and size (web-client/)"
dashboard_checks

section "cargo fmt"
step "run 'cargo fmt --all' and commit the result" \
  cargo fmt --all -- --check --color "$CARGO_TERM_COLOR"

section "cargo clippy"
step "fix the warnings above; clippy runs with -D warnings" \
  cargo clippy --workspace --all-targets --locked -- -D warnings

section "cargo test"
test_log=$(mktemp)
trap 'rm -f "$test_log"' EXIT
echo "+ cargo test --workspace --locked --no-fail-fast -- --skip abuse:: --skip broker_restart::"
test_status=0
cargo test --workspace --locked --no-fail-fast -- --skip abuse:: --skip broker_restart:: 2>&1 \
  | tee "$test_log" || test_status=$?
# The abuse tests time /health to the millisecond while they attack the server, and the
# broker test restarts the machine's RabbitMQ under every other test's queues: run them one
# at a time, after the rest.
echo "+ cargo test --workspace --locked --no-fail-fast --test e2e -- abuse:: broker_restart:: --test-threads=1"
cargo test --workspace --locked --no-fail-fast --test e2e -- abuse:: broker_restart:: \
  --test-threads=1 2>&1 | tee -a "$test_log" || test_status=$?

# Totals over every test binary and the doctests, from cargo's "test result:" lines.
read -r passed failed ignored < <(
  awk '/^test result: /{
         for (i = 1; i <= NF; i++) {
           if ($(i + 1) ~ /^passed/) passed += $i
           if ($(i + 1) ~ /^failed/) failed += $i
           if ($(i + 1) ~ /^ignored/) ignored += $i
         }
       }
       END { printf "%d %d %d\n", passed, failed, ignored }' "$test_log"
)

if [ "$test_status" -eq 0 ]; then
  section "schemathesis against /api-docs/openapi.json"
  run_schemathesis
fi

section "dashboard: browser test (Chromium, axe-core, screenshots in web-client/e2e/screenshots/)"
browser_status=0
if [ -x "$CARGO_TARGET_DIR/debug/crmbet" ]; then
  browser_test "$CARGO_TARGET_DIR/debug/crmbet" || browser_status=$?
else
  echo "  no crmbet binary at $CARGO_TARGET_DIR/debug/crmbet (cargo test did not build it)"
  browser_status=1
fi

section "summary"
if [ "$test_status" -ne 0 ]; then
  echo "tests: $passed passed, $failed failed, $ignored skipped"
  fail "cargo test exited with status $test_status" \
    "see the failing tests above (search for 'FAILED' or 'panicked'); a compile error shows as 'error['"
fi
if [ "$passed" -eq 0 ]; then
  fail "cargo test ran no test" "the workspace should have tests; check that cargo found the crates"
fi
if [ "$browser_status" -ne 0 ]; then
  fail "the dashboard's browser test exited with status $browser_status" \
    "see its 'not ok' lines above; the screenshots in web-client/e2e/screenshots/ show where it stopped"
fi
echo "all checks passed in $((SECONDS - started))s (services, deploy files, buf lint, dashboard, fmt, clippy, tests, schemathesis, browser)"
echo "tests: $passed passed, $failed failed, $ignored skipped"
