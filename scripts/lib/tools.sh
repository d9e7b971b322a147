# Installs the test tools into a cache outside the clone, once per version of their pins.
# Sourced by scripts/test.sh; expects REPO and TOOLS to be set.

BUF_VERSION=1.75.0

# stamp_matches DIR TEXT: whether DIR was installed for exactly TEXT.
stamp_matches() { [ -f "$1/.stamp" ] && [ "$(cat "$1/.stamp")" = "$2" ]; }

install_python_venv() { # install_python_venv DIR REQUIREMENTS_FILE
  local directory=$1 requirements=$2
  local stamp
  stamp="$(python3 --version 2>&1) $(sha256sum "$requirements" | cut -d' ' -f1)"
  if stamp_matches "$directory" "$stamp" && [ -x "$directory/bin/python" ]; then
    return 0
  fi
  echo "  installing $(basename "$requirements") into $directory"
  rm -rf "$directory"
  python3 -m venv "$directory"
  "$directory/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  echo "$stamp" > "$directory/.stamp"
}

install_buf() {
  local directory=$TOOLS/npm
  if stamp_matches "$directory" "$BUF_VERSION" && [ -x "$directory/node_modules/.bin/buf" ]; then
    return 0
  fi
  echo "  installing @bufbuild/buf@$BUF_VERSION into $directory"
  rm -rf "$directory"
  mkdir -p "$directory"
  npm install --silent --no-audit --no-fund --prefix "$directory" "@bufbuild/buf@$BUF_VERSION"
  echo "$BUF_VERSION" > "$directory/.stamp"
}

install_tools() {
  mkdir -p "$TOOLS"
  install_python_venv "$TOOLS/grpc-venv" "$REPO/tests/python/requirements.txt"
  install_buf
  export CRMBET_PYTHON="$TOOLS/grpc-venv/bin/python"
  export BUF="$TOOLS/npm/node_modules/.bin/buf"
}
