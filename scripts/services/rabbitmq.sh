#!/usr/bin/env bash
# Install, start, stop and restart a local RabbitMQ (Debian's rabbitmq-server) for the
# integration and chaos tests. Loopback only, no management plugin, idempotent.
#
#   bash scripts/services/rabbitmq.sh ensure    install if missing, start if not answering, wait
#   bash scripts/services/rabbitmq.sh stop      stop the node (no-op when it is not running)
#   bash scripts/services/rabbitmq.sh restart   stop + start (the chaos tests' broker restart)
#   bash scripts/services/rabbitmq.sh status    exit 0 when the node runs, 3 when it does not
#
# Runs as root: Debian's /usr/sbin/rabbitmq* wrappers switch to the rabbitmq user, so the
# node and rabbitmqctl share /var/lib/rabbitmq/.erlang.cookie. The cookie is also copied to
# root's home so the unwrapped CLI tools work too.
set -euo pipefail

HOST=127.0.0.1
PORT=5672
NODENAME=rabbit@localhost # independent of the machine's hostname resolving
START_TIMEOUT=${RABBITMQ_START_TIMEOUT:-120}
STOP_TIMEOUT=${RABBITMQ_STOP_TIMEOUT:-60}
ENV_CONF=/etc/rabbitmq/rabbitmq-env.conf
PLUGINS_FILE=/etc/rabbitmq/enabled_plugins
MARKER="# managed by scripts/services/rabbitmq.sh"

log() { echo "[rabbitmq] $*" >&2; }

port_open() { timeout 1 bash -c ">/dev/tcp/$HOST/$PORT" 2>/dev/null; }

ctl() { rabbitmqctl -q "$@"; }

install_package() {
  if command -v rabbitmq-server >/dev/null 2>&1; then
    return 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  local -a apt_opts=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
    log "apt-get update (no package lists yet)"
    apt-get update -q
  fi
  log "installing rabbitmq-server"
  if ! apt-get install "${apt_opts[@]}" rabbitmq-server; then
    log "install failed; refreshing package lists and retrying once"
    apt-get update -q
    apt-get install "${apt_opts[@]}" rabbitmq-server
  fi
}

desired_env_conf() {
  cat <<EOF
$MARKER
# Loopback only: AMQP listener, Erlang distribution and epmd.
NODENAME=$NODENAME
NODE_IP_ADDRESS=$HOST
NODE_PORT=$PORT
ERL_EPMD_ADDRESS=$HOST
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
}

config_current() {
  [[ -f $ENV_CONF ]] && [[ "$(cat "$ENV_CONF")" == "$(desired_env_conf)" ]]
}

configure() {
  # A node started under an older configuration (the package's own start, another node name)
  # must be stopped with that configuration before the new one is written.
  if ! config_current; then
    if port_open; then
      log "stopping the node running under the previous configuration"
      rabbitmqctl stop >/dev/null 2>&1 || true
      wait_port_closed || true
    fi
    mkdir -p "$(dirname "$ENV_CONF")"
    desired_env_conf >"$ENV_CONF"
    log "wrote $ENV_CONF"
  fi
  if [[ ! -f $PLUGINS_FILE ]]; then
    echo "[]." >"$PLUGINS_FILE" # no management plugin
  fi
  mkdir -p /var/log/rabbitmq /var/lib/rabbitmq
  chown rabbitmq:rabbitmq /var/log/rabbitmq /var/lib/rabbitmq
}

sync_cookie() {
  local cookie=/var/lib/rabbitmq/.erlang.cookie
  if [[ -f $cookie ]] && ! cmp -s "$cookie" "$HOME/.erlang.cookie" 2>/dev/null; then
    install -m 400 "$cookie" "$HOME/.erlang.cookie"
  fi
}

wait_port_closed() {
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while port_open; do
    if ((SECONDS >= deadline)); then
      log "port $PORT still open after ${STOP_TIMEOUT}s"
      return 1
    fi
    sleep 0.5
  done
}

wait_ready() {
  local deadline=$((SECONDS + START_TIMEOUT))
  until port_open && timeout 30 rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "not ready after ${START_TIMEOUT}s; last log lines:"
      tail -n 40 "/var/log/rabbitmq/$NODENAME.log" >&2 2>/dev/null || true
      return 1
    fi
    sleep 1
  done
  sync_cookie
}

start() {
  if port_open; then
    return 0
  fi
  log "starting $NODENAME on $HOST:$PORT"
  # -detached: the node outlives this script; output goes to /var/log/rabbitmq.
  (cd /var/lib/rabbitmq && rabbitmq-server -detached) </dev/null
  wait_ready
  # Quorum queues need the quorum_queue feature flag; a fresh node enables all flags, an
  # upgraded one may not have.
  ctl enable_feature_flag all >/dev/null 2>&1 || true
}

stop() {
  if ! port_open; then
    log "not running"
    return 0
  fi
  log "stopping $NODENAME"
  timeout "$STOP_TIMEOUT" rabbitmqctl -q stop || log "rabbitmqctl stop failed"
  wait_port_closed
}

status() {
  if ! port_open; then
    echo "rabbitmq: not running ($HOST:$PORT closed)"
    return 3
  fi
  echo "rabbitmq: running on $HOST:$PORT, node $NODENAME, version $(ctl version 2>/dev/null || echo '?')"
  if ctl list_feature_flags name state 2>/dev/null | grep -q 'quorum_queue.*enabled'; then
    echo "rabbitmq: quorum_queue feature flag enabled"
  else
    echo "rabbitmq: quorum_queue feature flag NOT enabled"
  fi
}

ensure() {
  local started=$SECONDS
  install_package
  configure
  if port_open; then
    if ! timeout 30 rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
      # Something else owns 5672 (a container, another node name): use it as it is.
      log "$HOST:$PORT answers but node $NODENAME does not; using that broker as it is"
      return 0
    fi
    wait_ready # ours: make sure it is fully up, not half-started
  else
    start
  fi
  log "ready in $((SECONDS - started))s ($(ctl version 2>/dev/null || echo 'version unknown'))"
}

case "${1:-}" in
  ensure) ensure ;;
  start) install_package && configure && start ;;
  stop) stop ;;
  restart)
    stop
    start
    ;;
  status) status ;;
  *)
    echo "usage: $0 {ensure|start|stop|restart|status}" >&2
    exit 2
    ;;
esac
