#!/usr/bin/env bash
# Installs Debian's Prometheus server and promtool when either is missing; the metrics
# tests start a throwaway Prometheus of their own. Idempotent: does nothing when both exist.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
# --no-install-recommends: the server and promtool only, not the node exporter and friends.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus
command -v prometheus >/dev/null && command -v promtool >/dev/null
