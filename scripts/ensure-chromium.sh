# shellcheck shell=bash
# The demo's browser test opens the HTML waterfall in Debian's Chromium (driven by playwright-core;
# Playwright's own browser download cannot work offline). Installs it when missing and we are root.
hoptrace_ensure_chromium() {
  local bin="${HOPTRACE_CHROMIUM:-/usr/bin/chromium}"
  [[ -x "$bin" ]] && return 0
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "chromium: installing Debian's chromium for the browser test" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) >&2 || return 1
  else
    echo "chromium: $bin is missing; install it (apt-get install -y chromium) or set HOPTRACE_CHROMIUM" >&2
    return 1
  fi
}
