# shellcheck shell=bash
# The dashboard's checks (web-client/): packages from the lockfile, the generated client and
# the committed build are current, lint, types, Vitest, the size budget; and the browser test
# against the real server in Chromium (Debian's package, installed here when missing).
# Sourced by scripts/test.sh, which provides REPO, TOOLS, BUF, `fail` and `step`.

CHROMIUM=${CRMBET_CHROMIUM:-/usr/bin/chromium}

install_chromium() {
  if [ -x "$CHROMIUM" ]; then
    echo "  chromium: $CHROMIUM"
    return 0
  fi
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo -n)
  echo "  chromium: installing Debian's chromium (apt-get)"
  "${sudo[@]}" apt-get install -y -q chromium >/dev/null \
    || { "${sudo[@]}" apt-get update -q >/dev/null && "${sudo[@]}" apt-get install -y -q chromium >/dev/null; } \
    || fail "apt-get could not install chromium" \
      "install it yourself (apt-get install -y chromium) or point CRMBET_CHROMIUM at a Chromium binary"
  [ -x "$CHROMIUM" ] || fail "chromium was installed but $CHROMIUM is missing" \
    "set CRMBET_CHROMIUM to the Chromium binary"
}

# The committed files under PATH (relative to the repository) are unchanged and nothing
# new appeared there.
unchanged() {
  git -C "$REPO" diff --exit-code --stat -- "$1" && [ -z "$(git -C "$REPO" status --porcelain -- "$1")" ]
}

dashboard_checks() {
  (
    cd "$REPO/web-client" || exit 1
    step "check that the npm registry is reachable and package-lock.json matches package.json" \
      npm ci --no-audit --no-fund --loglevel=error --prefer-offline --cache "$TOOLS/npm-cache"
    cd "$REPO" || exit 1
    step "the TypeScript client is generated from proto/: run 'buf generate' at the root" \
      "$BUF" generate
    step "commit the regenerated web-client/src/gen/ ('buf generate' changed it)" \
      unchanged web-client/src/gen
    cd "$REPO/web-client" || exit 1
    step "fix the lint warnings above (npm run lint)" npm run --silent lint
    step "fix the type errors above (npm run typecheck)" npm run --silent typecheck
    step "fix the failing Vitest tests above (npm test)" npm run --silent test
    step "fix the build above; the initial JavaScript must stay within its budget" \
      nice -n 10 npm run --silent build
    step "commit the rebuilt web-client/dist/ (the server embeds it): run 'npm run build' in web-client/" \
      unchanged web-client/dist
  )
}

# browser_test CRMBET_BINARY: the Playwright + axe run; the summary line is node's test runner's.
browser_test() {
  (
    cd "$REPO/web-client" || exit 1
    CRMBET_BIN=$1 CRMBET_CHROMIUM=$CHROMIUM node --test e2e/dashboard.e2e.mjs
  )
}
