# shellcheck shell=bash
# Installs the test tools into a cache outside the clone ($TOOLS), once per version of
# their pins: Python virtualenvs for grpcio (tests/python/requirements.txt), moto_server
# (s3-requirements.txt, the S3-compatible server of the S3 lake tests) and the Python peer
# (peer-requirements.txt: pandas, DuckDB, scikit-learn), statsmodels (stats-requirements.txt,
# the reference of the campaign results' statistics), schemathesis
# (schemathesis-requirements.txt, fuzzing the OpenAPI document), the deploy-files validator
# (tests/deploy/requirements.txt: Compose and Kubernetes schemas), and buf from npm.
# A stamp file written last marks a finished install, so an interrupted one is redone.
# Sourced by scripts/test.sh, which provides REPO, TOOLS and `fail`.

# buf 1.x from npm; the package ships the Linux binary as an optional dependency.
BUF_VERSION=1.75.0

# stamp_matches DIRECTORY TEXT: whether DIRECTORY holds a finished install of exactly TEXT.
stamp_matches() { [ -f "$1/.stamp" ] && [ "$(cat "$1/.stamp")" = "$2" ]; }

grpc_venv_works() { # grpc_venv_works DIRECTORY
  "$1/bin/python" -c 'import grpc, grpc_reflection, grpc_tools, google.protobuf' >/dev/null 2>&1
}

s3_venv_works() { # s3_venv_works DIRECTORY
  [ -x "$1/bin/moto_server" ] && "$1/bin/python" -c 'import moto.server, flask' >/dev/null 2>&1
}

schemathesis_venv_works() { # schemathesis_venv_works DIRECTORY
  [ -x "$1/bin/schemathesis" ] && "$1/bin/schemathesis" --version >/dev/null 2>&1
}

stats_venv_works() { # stats_venv_works DIRECTORY
  "$1/bin/python" -c 'import statsmodels.stats.proportion, statsmodels.stats.weightstats' >/dev/null 2>&1
}

deploy_venv_works() { # deploy_venv_works DIRECTORY
  "$1/bin/python" -c 'import kubernetes_validate, check_jsonschema, jsonschema, yaml' >/dev/null 2>&1
}

peer_venv_works() { # peer_venv_works DIRECTORY
  "$1/bin/python" -c 'import numpy, pandas, pyarrow, duckdb, sklearn' >/dev/null 2>&1
}

# install_venv NAME DIRECTORY REQUIREMENTS_FILE CHECK: a virtualenv with the pinned
# requirements, reinstalled when the pins or the Python change or CHECK DIRECTORY fails.
install_venv() {
  local name=$1 directory=$2 requirements=$3 check=$4 stamp
  stamp="$(python3 --version 2>&1) $(sha256sum "$requirements" | cut -d' ' -f1)"
  if stamp_matches "$directory" "$stamp" && "$check" "$directory"; then
    echo "  $name venv: cached ($directory)"
    return 0
  fi
  echo "  $name venv: installing ${requirements#"$REPO"/} into $directory"
  rm -rf "$directory"
  python3 -m venv "$directory" \
    || fail "python3 -m venv failed" "install the venv module (apt-get install -y python3-venv)"
  "$directory/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --retries 5 --timeout 60 -r "$requirements" \
    || fail "pip could not install ${requirements#"$REPO"/}" \
      "check that PyPI is reachable and that the pins in that file still resolve together"
  "$check" "$directory" \
    || fail "the $name venv in $directory does not work ($check)" \
      "delete $directory and rerun; check the pins in ${requirements#"$REPO"/}"
  echo "$stamp" >"$directory/.stamp"
}

buf_works() { # buf_works BUF_BINARY
  [ -x "$1" ] && [ "$("$1" --version 2>/dev/null)" = "$BUF_VERSION" ]
}

install_buf() { # install_buf DIRECTORY
  local directory=$1
  if stamp_matches "$directory" "$BUF_VERSION" && buf_works "$directory/node_modules/.bin/buf"; then
    echo "  buf: cached $BUF_VERSION ($directory)"
    return 0
  fi
  echo "  buf: installing @bufbuild/buf@$BUF_VERSION into $directory"
  rm -rf "$directory"
  mkdir -p "$directory"
  npm install --prefix "$directory" --no-audit --no-fund --loglevel=error \
    "@bufbuild/buf@$BUF_VERSION" \
    || fail "npm could not install @bufbuild/buf@$BUF_VERSION" \
      "check that the npm registry is reachable and that BUF_VERSION in scripts/lib/tools.sh exists"
  buf_works "$directory/node_modules/.bin/buf" \
    || fail "the installed buf does not run or is not $BUF_VERSION" \
      "delete $directory and rerun; npm must not omit optional dependencies (the binary is one)"
  echo "$BUF_VERSION" >"$directory/.stamp"
}

install_tools() {
  mkdir -p "$TOOLS"
  local lock_descriptor
  # Two runs at once on one machine share the cache: the second waits for the first.
  exec {lock_descriptor}>"$TOOLS/.install.lock"
  flock "$lock_descriptor"
  install_venv grpcio "$TOOLS/grpc-venv" "$REPO/tests/python/requirements.txt" grpc_venv_works
  install_venv moto_server "$TOOLS/s3-venv" "$REPO/tests/python/s3-requirements.txt" s3_venv_works
  install_venv peer "$TOOLS/peer-venv" "$REPO/tests/python/peer-requirements.txt" peer_venv_works
  install_venv statsmodels "$TOOLS/stats-venv" "$REPO/tests/python/stats-requirements.txt" stats_venv_works
  install_venv schemathesis "$TOOLS/schemathesis-venv" "$REPO/tests/python/schemathesis-requirements.txt" schemathesis_venv_works
  install_venv deploy-check "$TOOLS/deploy-venv" "$REPO/tests/deploy/requirements.txt" deploy_venv_works
  install_buf "$TOOLS/npm"
  exec {lock_descriptor}>&-
  export CRMBET_PYTHON="$TOOLS/grpc-venv/bin/python"
  export CRMBET_MOTO_SERVER="$TOOLS/s3-venv/bin/moto_server"
  export CRMBET_PEER_PYTHON="$TOOLS/peer-venv/bin/python"
  export CRMBET_STATS_PYTHON="$TOOLS/stats-venv/bin/python"
  export SCHEMATHESIS="$TOOLS/schemathesis-venv/bin/schemathesis"
  export CRMBET_DEPLOY_PYTHON="$TOOLS/deploy-venv/bin/python"
  export BUF="$TOOLS/npm/node_modules/.bin/buf"
}
