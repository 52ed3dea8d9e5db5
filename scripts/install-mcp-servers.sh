#!/usr/bin/env bash
# Installs the MCP servers the tests start, pinned, where missing, into ~/.cache/pe
# (PE_MCP_DIR overrides): the npm filesystem and everything servers (stdio), and the Python
# `mcp` package in a virtual environment (for the streamable-HTTP test server,
# tests/mcp_servers/http_server.py). Package caches stay inside that directory.
set -euo pipefail

dir="${PE_MCP_DIR:-$HOME/.cache/pe}"
npm_dir="$dir/npm"
venv="$dir/mcp-python"

FILESYSTEM=@modelcontextprotocol/server-filesystem@2026.8.31
EVERYTHING=@modelcontextprotocol/server-everything@2026.8.31
PYTHON_MCP=mcp==2.3.0

if [ ! -x "$npm_dir/node_modules/.bin/mcp-server-filesystem" ] || [ ! -x "$npm_dir/node_modules/.bin/mcp-server-everything" ]; then
  command -v npm >/dev/null || { echo "install-mcp-servers: npm is needed (node 20+)" >&2; exit 1; }
  mkdir -p "$npm_dir"
  echo "installing $FILESYSTEM and $EVERYTHING into $npm_dir"
  npm install --prefix "$npm_dir" --cache "$npm_dir/.npm-cache" --no-audit --no-fund --save-exact \
    --loglevel=error "$FILESYSTEM" "$EVERYTHING"
  rm -rf "$npm_dir/.npm-cache"
fi

if ! "$venv/bin/python" -c 'import mcp' >/dev/null 2>&1; then
  echo "installing $PYTHON_MCP into $venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir "$PYTHON_MCP"
fi
echo "MCP servers: $npm_dir/node_modules/.bin, $venv/bin/python"
