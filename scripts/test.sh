#!/usr/bin/env bash
# The whole test suite: lint, format, clippy and every test, against the real PostgreSQL,
# Redis and RabbitMQ (started here if they do not answer). Run from anywhere.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# Build outputs and tools live outside the clone, so warm runs in fresh clones reuse them.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/crmbet/target}
TOOLS=${CRMBET_TOOLS_DIR:-$HOME/.cache/crmbet/tools}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# shellcheck source=lib/services.sh
source "$REPO/scripts/lib/services.sh"
# shellcheck source=lib/tools.sh
source "$REPO/scripts/lib/tools.sh"

started=$(date +%s)
section() { echo; echo "== $1 ($(($(date +%s) - started))s)"; }

section "services"
ensure_services
export CRMBET_TEST_POSTGRES_URL=${CRMBET_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
export CRMBET_TEST_REDIS_URL=${CRMBET_TEST_REDIS_URL:-redis://127.0.0.1:6379}
export CRMBET_TEST_AMQP_URL=${CRMBET_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}

section "tools"
install_tools

section "buf lint"
"$BUF" lint
"$BUF" build -o /dev/null

section "cargo fmt"
cargo fmt --all -- --check

section "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

section "cargo test"
cargo test --workspace --locked --no-fail-fast

section "done"
echo "all checks passed in $(($(date +%s) - started))s"
