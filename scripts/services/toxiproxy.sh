#!/usr/bin/env bash
# Install (go install, pinned), start and stop a local Toxiproxy server for the chaos tests.
# API on 127.0.0.1:8474 only; idempotent.
#
#   bash scripts/services/toxiproxy.sh ensure   install if missing, start if not answering, wait
#   bash scripts/services/toxiproxy.sh stop     stop the server this script started
#   bash scripts/services/toxiproxy.sh status   exit 0 when the API answers, 3 when it does not
#
# Settings (environment): TOXIPROXY_GOBIN (where the binary lives), TOXIPROXY_HOST,
# TOXIPROXY_PORT, TOXIPROXY_STATE_DIR (pid file and log), TOXIPROXY_START_TIMEOUT.
set -euo pipefail

TOXIPROXY_VERSION=v2.5.0
TOXIPROXY_MODULE=github.com/Shopify/toxiproxy/v2
if [[ $(id -u) == 0 ]]; then
  default_home=/usr/local/lib/toxiproxy
  default_state=/var/lib/toxiproxy
else
  default_home=${XDG_DATA_HOME:-$HOME/.local/share}/toxiproxy
  default_state=$default_home/state
fi
GOBIN_DIR=${TOXIPROXY_GOBIN:-$default_home/bin}
STATE_DIR=${TOXIPROXY_STATE_DIR:-$default_state}
HOST=${TOXIPROXY_HOST:-127.0.0.1}
PORT=${TOXIPROXY_PORT:-8474}
START_TIMEOUT=${TOXIPROXY_START_TIMEOUT:-30}
BIN=$GOBIN_DIR/toxiproxy-server
PIDFILE=$STATE_DIR/toxiproxy-$PORT.pid
LOGFILE=$STATE_DIR/toxiproxy-$PORT.log
API=http://$HOST:$PORT

log() { echo "[toxiproxy] $*" >&2; }

need_curl() {
  command -v curl >/dev/null 2>&1 && return 0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q curl >&2 ||
    { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q curl >&2; }
}

api_version() { curl -fsS --max-time 2 "$API/version" 2>/dev/null; }

# shellcheck source=scripts/find_go.sh
source "$(dirname "${BASH_SOURCE[0]}")/../find_go.sh"

binary_current() {
  [[ -x $BIN ]] && "$BIN" -version 2>/dev/null | grep -qF "version ${TOXIPROXY_VERSION#v}"
}

install_binary() {
  if binary_current; then
    return 0
  fi
  local go started=$SECONDS
  go=$(find_go)
  mkdir -p "$GOBIN_DIR"
  log "go install $TOXIPROXY_MODULE/cmd/server@$TOXIPROXY_VERSION into $GOBIN_DIR"
  # -X sets the version the server reports (a plain `go install` reports "git").
  GOBIN=$GOBIN_DIR GOTOOLCHAIN=local GOFLAGS=-buildvcs=false "$go" install \
    -ldflags "-X $TOXIPROXY_MODULE.Version=${TOXIPROXY_VERSION#v}" \
    "$TOXIPROXY_MODULE/cmd/server@$TOXIPROXY_VERSION"
  mv -f "$GOBIN_DIR/server" "$BIN"
  log "installed $("$BIN" -version) in $((SECONDS - started))s"
}

running_pid() {
  local pid
  [[ -f $PIDFILE ]] || return 1
  pid=$(cat "$PIDFILE")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$BIN" && echo "$pid"
}

start() {
  if api_version >/dev/null; then
    return 0
  fi
  mkdir -p "$STATE_DIR"
  log "starting $BIN on $HOST:$PORT (log: $LOGFILE)"
  # setsid + nohup: the server outlives this script and its session.
  setsid nohup "$BIN" -host "$HOST" -port "$PORT" >>"$LOGFILE" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  local deadline=$((SECONDS + START_TIMEOUT))
  until api_version >/dev/null; do
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null || ((SECONDS >= deadline)); then
      log "did not answer on $API/version; last log lines:"
      tail -n 20 "$LOGFILE" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    if api_version >/dev/null; then
      log "$API answers but was not started by this script (no pid file); leaving it"
      return 1
    fi
    log "not running"
    rm -f "$PIDFILE"
    return 0
  fi
  log "stopping pid $pid"
  kill -TERM "$pid"
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$PIDFILE"
}

status() {
  local version
  if version=$(api_version); then
    echo "toxiproxy: running at $API, version $version"
  else
    echo "toxiproxy: not running ($API does not answer)"
    return 3
  fi
}

ensure() {
  local started=$SECONDS version
  need_curl
  if version=$(api_version); then
    log "already answering at $API (version $version)"
    return 0
  fi
  install_binary
  start
  log "ready at $API (version $(api_version)) in $((SECONDS - started))s"
}

case "${1:-}" in
  ensure) ensure ;;
  install) install_binary ;;
  stop) stop ;;
  restart)
    stop
    ensure
    ;;
  status) status ;;
  *)
    echo "usage: $0 {ensure|install|stop|restart|status}" >&2
    exit 2
    ;;
esac
