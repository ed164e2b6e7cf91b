# shellcheck shell=bash
# `./dev containers ...`: makes the Testcontainers path runnable on a Debian machine that has no
# Docker engine and no image registry (only Debian's mirror and Maven Central). Sourced by ./dev after
# scripts/toolchain.sh (it uses $HOPTRACE_CACHE and Node).
#
# - podman, runc and debootstrap come from Debian (apt-get, as root) when missing.
# - podman is configured by the project's own containers.conf, named by CONTAINERS_CONF, so nothing
#   system-wide changes: runc as the OCI runtime, and default ulimits within this machine's hard
#   limits (podman's defaults exceed them and every container fails to start).
# - `podman system service` serves the Docker API on a socket under the cache; Testcontainers talks to
#   it through DOCKER_HOST, with Ryuk off (its image cannot be pulled; the harness removes its own
#   containers) and every connection on 127.0.0.1.
# - The broker images are built here (packages/test-kit/src/harness/images.ts) and kept in podman's
#   storage, keyed by a hash of their recipe.

HOPTRACE_CONTAINERS_DIR="$HOPTRACE_CACHE/containers"
HOPTRACE_CONTAINERS_SOCK="$HOPTRACE_CONTAINERS_DIR/podman.sock"
HOPTRACE_CONTAINERS_PID="$HOPTRACE_CONTAINERS_DIR/service.pid"
HOPTRACE_CONTAINERS_IMAGES="$HOPTRACE_CONTAINERS_DIR/images.env"
HOPTRACE_CONTAINERS_STARTED_SERVICE=0

hoptrace_containers_packages() {
  local missing=() tool
  for tool in podman runc debootstrap; do
    # debootstrap lives in /usr/sbin, which a non-login root shell may not have on PATH.
    command -v "$tool" >/dev/null || [[ -x "/usr/sbin/$tool" ]] || missing+=("$tool")
  done
  ((${#missing[@]} == 0)) && return 0
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
    echo "containers: ${missing[*]} missing; install them (apt-get install -y ${missing[*]}) as root" >&2
    return 1
  fi
  echo "containers: installing ${missing[*]} from Debian" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Writes the project's containers.conf and points podman at it (CONTAINERS_CONF replaces the system's
# files for every podman started from here, the API service included).
hoptrace_containers_conf() {
  local conf="$HOPTRACE_CONTAINERS_DIR/containers.conf" nofile nproc
  mkdir -p "$HOPTRACE_CONTAINERS_DIR"
  # A container may not raise a limit above the hard limit of the process that starts it: take the
  # hard limits as they are here, capped at ordinary values.
  nofile="$(ulimit -Hn)"; [[ "$nofile" == unlimited || "$nofile" -gt 65536 ]] && nofile=65536
  nproc="$(ulimit -Hu)"; [[ "$nproc" == unlimited || "$nproc" -gt 32768 ]] && nproc=32768
  cat >"$conf" <<EOF
# Written by hoptrace's ./dev containers; used only through CONTAINERS_CONF.
[containers]
# podman's defaults (nofile 1048576) exceed this machine's hard limits: runc could not set them.
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
# crun fails on this machine's hybrid cgroup setup; runc works.
runtime = "runc"
EOF
  export CONTAINERS_CONF="$conf"
}

hoptrace_containers_service_pid() {
  local pid
  pid="$(cat "$HOPTRACE_CONTAINERS_PID" 2>/dev/null)" || return 1
  # Only our own service: a recycled pid must never be mistaken for it.
  [[ -n "$pid" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "system service --time=0 unix://$HOPTRACE_CONTAINERS_SOCK" || return 1
  echo "$pid"
}

hoptrace_containers_ping() {
  if command -v curl >/dev/null; then
    curl -fsS --max-time 2 --unix-socket "$HOPTRACE_CONTAINERS_SOCK" http://d/_ping >/dev/null 2>&1
  else
    timeout 5 podman --remote --url "unix://$HOPTRACE_CONTAINERS_SOCK" version >/dev/null 2>&1
  fi
}

hoptrace_containers_start_service() {
  if hoptrace_containers_service_pid >/dev/null && hoptrace_containers_ping; then
    return 0
  fi
  rm -f "$HOPTRACE_CONTAINERS_SOCK"
  # INT and HUP ignored: a Ctrl-C in the terminal must not take the API away while the harness is
  # still removing its containers; we stop it ourselves.
  (trap '' INT HUP; exec podman system service --time=0 "unix://$HOPTRACE_CONTAINERS_SOCK" \
    >"$HOPTRACE_CONTAINERS_DIR/service.log" 2>&1 </dev/null) &
  echo $! >"$HOPTRACE_CONTAINERS_PID"
  HOPTRACE_CONTAINERS_STARTED_SERVICE=1
  local i
  for ((i = 0; i < 150; i++)); do
    hoptrace_containers_ping && { echo "containers: podman API service on unix://$HOPTRACE_CONTAINERS_SOCK (pid $(cat "$HOPTRACE_CONTAINERS_PID"))" >&2; return 0; }
    sleep 0.2
  done
  echo "containers: the podman API service did not answer within 30 s; see $HOPTRACE_CONTAINERS_DIR/service.log" >&2
  return 1
}

hoptrace_containers_stop_service() {
  local pid i
  pid="$(hoptrace_containers_service_pid)" || { rm -f "$HOPTRACE_CONTAINERS_PID"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  rm -f "$HOPTRACE_CONTAINERS_PID" "$HOPTRACE_CONTAINERS_SOCK"
  echo "containers: stopped the podman API service (pid $pid)" >&2
}

# The environment the harness needs to take the Testcontainers route with the local images.
hoptrace_containers_exports() {
  echo "export CONTAINERS_CONF=$HOPTRACE_CONTAINERS_DIR/containers.conf"
  echo "export DOCKER_HOST=unix://$HOPTRACE_CONTAINERS_SOCK"
  echo "export TESTCONTAINERS_RYUK_DISABLED=true"
  echo "export TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1"
  sed 's/^/export /' "$HOPTRACE_CONTAINERS_IMAGES"
  echo "export HOPTRACE_BROKERS=testcontainers"
}

# Packages, containers.conf, images (built when their recipe changed), API service; then exports the
# route's environment into this shell.
hoptrace_containers_setup() {
  local started images
  started=$(date +%s)
  hoptrace_containers_packages
  export PATH="$PATH:/usr/sbin:/sbin"
  hoptrace_containers_conf
  images="$(node packages/test-kit/src/harness/cli.ts containers-images)"
  printf '%s\n' "$images" >"$HOPTRACE_CONTAINERS_IMAGES"
  hoptrace_containers_start_service
  eval "$(hoptrace_containers_exports)"
  echo "containers: ready in $(($(date +%s) - started)) s" >&2
}

# Removes every container the harness labelled (whoever started it) and stops the API service.
hoptrace_containers_stop() {
  local ids
  hoptrace_containers_conf
  ids="$(podman ps -aq --filter label=dev.hoptrace.harness 2>/dev/null || true)"
  if [[ -n "$ids" ]]; then
    # shellcheck disable=SC2086
    podman rm -f $ids >/dev/null && echo "containers: removed $(wc -w <<<"$ids") harness container(s)" >&2
  fi
  hoptrace_containers_stop_service
}
