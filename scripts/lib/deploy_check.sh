# shellcheck shell=bash
# The deployment files (deploy/, railway.json, .dockerignore) against the schemas of their
# formats and against the code: tests/deploy/validate.py (Compose specification, strict
# Kubernetes schemas, the crmbet command lines and setting names in them, the Dockerfile's
# COPY sources, railway.json, the configuration table of docs/operations.md) with the pinned
# venv of tests/deploy/requirements.txt, its self-test (known mistakes must each be reported),
# and deploy/Caddyfile with `caddy validate` (Debian's caddy, installed here when missing).
# No Docker engine and no Kubernetes API server are needed, and none is used.
#
# Sourced by scripts/test.sh, which provides REPO, TOOLS, CRMBET_DEPLOY_PYTHON (install_tools
# in scripts/lib/tools.sh), `fail` and `step`. Alone, installing its venv when needed:
#   bash scripts/lib/deploy_check.sh

CADDY=${CRMBET_CADDY:-/usr/bin/caddy}

install_caddy() {
  if [ -x "$CADDY" ]; then
    echo "  caddy: $CADDY"
    return 0
  fi
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo -n)
  # Debian's package ships a systemd unit only: without systemd nothing starts.
  echo "  caddy: installing Debian's caddy (apt-get)"
  "${sudo[@]}" apt-get install -y -q caddy >/dev/null \
    || { "${sudo[@]}" apt-get update -q >/dev/null && "${sudo[@]}" apt-get install -y -q caddy >/dev/null; } \
    || fail "apt-get could not install caddy" \
      "install it yourself (apt-get install -y caddy) or point CRMBET_CADDY at a caddy binary"
  [ -x "$CADDY" ] || fail "caddy was installed but $CADDY is missing" "set CRMBET_CADDY to the caddy binary"
}

# caddy_validates CADDYFILE: loads and provisions the configuration without serving it; its
# log is shown only when it fails. SITE_ADDRESS is the compose file's variable.
caddy_validates() {
  local log status=0
  log=$(mktemp)
  SITE_ADDRESS=crm.example.com "$CADDY" validate --config "$1" --adapter caddyfile >"$log" 2>&1 || status=$?
  [ "$status" -eq 0 ] || cat "$log" >&2
  rm -f "$log"
  return "$status"
}

deploy_checks() {
  install_caddy
  step "fix the problems listed above in deploy/, railway.json, .dockerignore, .env.example or docs/operations.md" \
    "$CRMBET_DEPLOY_PYTHON" "$REPO/tests/deploy/validate.py" --root "$REPO"
  step "a known mistake was not reported (MISSED), or MISTAKES in tests/deploy/validate.py no longer matches the files (STALE): see above" \
    "$CRMBET_DEPLOY_PYTHON" "$REPO/tests/deploy/validate.py" --root "$REPO" --self-test
  step "fix deploy/Caddyfile: caddy printed why above (the proxy of deploy/docker-compose.production.yml)" \
    caddy_validates "$REPO/deploy/Caddyfile"
}

# Run alone: the same report as scripts/test.sh, with only this section.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  TOOLS="${CRMBET_TOOLS_DIR:-$HOME/.cache/crmbet/tools}"
  current_section="deploy files: compose and Kubernetes schemas"
  started=$SECONDS

  # The same two helpers as scripts/test.sh's.
  fail() {
    {
      echo
      echo "FAILED in '$current_section': $1"
      [ -n "${2:-}" ] && echo "  to fix: $2"
    } >&2
    exit 1
  }
  step() {
    local how_to_fix=$1
    shift
    echo "+ $*"
    "$@" || fail "'$*' exited with status $?" "$how_to_fix"
  }

  # shellcheck source=scripts/lib/tools.sh
  source "$REPO/scripts/lib/tools.sh"
  echo "==== $current_section"
  mkdir -p "$TOOLS"
  exec {deploy_lock}>"$TOOLS/.install.lock"
  flock "$deploy_lock"
  install_venv deploy-check "$TOOLS/deploy-venv" "$REPO/tests/deploy/requirements.txt" deploy_venv_works
  exec {deploy_lock}>&-
  CRMBET_DEPLOY_PYTHON="$TOOLS/deploy-venv/bin/python"
  deploy_checks
  echo "deploy files: all checks passed in $((SECONDS - started))s"
fi
