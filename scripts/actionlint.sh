#!/usr/bin/env bash
# actionlint, pinned and built with `go install`, over .github/workflows. With shellcheck on the
# PATH it also checks every `run:` block. Installs on first use; later runs only lint.
#
#   bash scripts/actionlint.sh [ARGS...]   install if missing or not the pinned version, lint
#   bash scripts/actionlint.sh install     install only
#
# Settings (environment): ACTIONLINT_GOBIN (where the binary lives; default
# /usr/local/lib/actionlint/bin as root, like scripts/services/toxiproxy.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ACTIONLINT_VERSION=v1.7.12
ACTIONLINT_PACKAGE=github.com/rhysd/actionlint/cmd/actionlint
if [[ $(id -u) == 0 ]]; then
  default_gobin=/usr/local/lib/actionlint/bin
else
  default_gobin=${XDG_DATA_HOME:-$HOME/.local/share}/actionlint/bin
fi
GOBIN_DIR=${ACTIONLINT_GOBIN:-$default_gobin}
BIN=$GOBIN_DIR/actionlint

log() { echo "[actionlint] $*" >&2; }

# shellcheck source=scripts/find_go.sh
source "$(dirname "${BASH_SOURCE[0]}")/find_go.sh"

# `go install pkg@version` stamps the module version into the binary: its first line.
binary_current() {
  [[ -x $BIN ]] && [[ "$("$BIN" -version 2>/dev/null | head -n 1)" == "$ACTIONLINT_VERSION" ]]
}

install_binary() {
  if binary_current; then
    return 0
  fi
  local go started=$SECONDS
  go=$(find_go)
  mkdir -p "$GOBIN_DIR"
  rm -f "$BIN" # go install will not replace a file it did not build
  log "go install $ACTIONLINT_PACKAGE@$ACTIONLINT_VERSION into $GOBIN_DIR"
  GOBIN=$GOBIN_DIR GOTOOLCHAIN=local GOFLAGS=-buildvcs=false "$go" install \
    "$ACTIONLINT_PACKAGE@$ACTIONLINT_VERSION"
  if ! binary_current; then
    log "$BIN does not report $ACTIONLINT_VERSION after the install"
    return 1
  fi
  log "installed in $((SECONDS - started))s"
}

case "${1:-}" in
  install) install_binary ;;
  *)
    install_binary
    if command -v shellcheck >/dev/null 2>&1; then
      log "$ACTIONLINT_VERSION, shellcheck $(shellcheck --version | sed -n 's/^version: //p')"
    else
      log "$ACTIONLINT_VERSION; shellcheck is not on the PATH, so run: blocks go unchecked"
    fi
    "$BIN" "$@"
    ;;
esac
