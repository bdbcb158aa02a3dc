# shellcheck shell=bash
# Sourced by the scripts that `go install` a tool (toxiproxy, actionlint); expects a `log` function.
# Prints the path of a Go toolchain, installing Debian's golang-go when there is none.
find_go() {
  if command -v go >/dev/null 2>&1; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    echo /usr/local/go/bin/go
  else
    log "no Go toolchain found; installing Debian's golang-go"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q golang-go >&2 ||
      { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q golang-go >&2; }
    command -v go
  fi
}
