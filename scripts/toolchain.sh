# shellcheck shell=bash
# Puts Node 24 and pnpm on PATH, installing them from the npm registry into a cache outside the
# repository the first time. Sourced by ./dev and .ci/run; nothing here needs root.
#
# The machine's own Node (20) runs only `npm install` of the pinned `node` package, whose bin is a
# real Node binary. Versions are pinned here and in package.json (`packageManager`).

HOPTRACE_NODE_VERSION="${HOPTRACE_NODE_VERSION:-24.21.0}"
HOPTRACE_PNPM_VERSION="$(sed -n 's/.*"packageManager": *"pnpm@\([^"]*\)".*/\1/p' "$(dirname "${BASH_SOURCE[0]}")/../package.json")"
HOPTRACE_CACHE="${HOPTRACE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hoptrace}"

hoptrace_toolchain() {
  local node_dir="$HOPTRACE_CACHE/node-$HOPTRACE_NODE_VERSION"
  local pnpm_dir="$HOPTRACE_CACHE/pnpm-$HOPTRACE_PNPM_VERSION"
  local have
  have="$(node --version 2>/dev/null || true)"
  if [[ "$have" != v2[4-9].* && "$have" != v[3-9][0-9].* ]]; then
    if [[ ! -x "$node_dir/node_modules/.bin/node" ]]; then
      echo "toolchain: installing Node $HOPTRACE_NODE_VERSION into $node_dir (from the npm registry)" >&2
      command -v npm >/dev/null || { echo "toolchain: npm is needed to fetch Node 24; install Node >= 20 first" >&2; return 1; }
      npm install --prefix "$node_dir" --no-save --no-audit --no-fund --loglevel=error "node@$HOPTRACE_NODE_VERSION" >&2 || return 1
    fi
    export PATH="$node_dir/node_modules/.bin:$PATH"
  fi
  if [[ "$(pnpm --version 2>/dev/null || true)" != "$HOPTRACE_PNPM_VERSION" ]]; then
    if [[ ! -x "$pnpm_dir/node_modules/.bin/pnpm" ]]; then
      echo "toolchain: installing pnpm $HOPTRACE_PNPM_VERSION into $pnpm_dir (from the npm registry)" >&2
      npm install --prefix "$pnpm_dir" --no-save --no-audit --no-fund --loglevel=error "pnpm@$HOPTRACE_PNPM_VERSION" >&2 || return 1
    fi
    export PATH="$pnpm_dir/node_modules/.bin:$PATH"
  fi
  # Node's own bin dir must win for child processes started by pnpm too.
  export npm_config_update_notifier=false
}
