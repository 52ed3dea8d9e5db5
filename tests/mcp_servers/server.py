"""An MCP server for pe's tests, written with the Python `mcp` package (pinned in
scripts/install-mcp-servers.sh).

    server.py stdio [--pidfile PATH]      MCP over stdin/stdout
    server.py http PORT [--pidfile PATH]  streamable HTTP on 127.0.0.1:PORT/mcp

Tools: `add` (structured output), `echo`, `fail` (an error result: isError), `crash` (the
process exits with code 3 mid-call after a line on stderr), `hang` (never answers).
"""

import os
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("pe-test-server")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Echo the text back."""
    return f"echo: {text}"


@server.tool()
def fail(reason: str) -> str:
    """Always fails with the reason."""
    raise ToolError(f"refused: {reason}")


@server.tool()
def crash() -> str:
    """Exits the server process in the middle of the call."""
    print("pe-test-server: crashing on purpose", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool()
def hang() -> str:
    """Never answers."""
    while True:
        time.sleep(60)


def main() -> None:
    args = sys.argv[1:]
    if "--pidfile" in args:
        at = args.index("--pidfile")
        with open(args[at + 1], "w") as f:
            f.write(str(os.getpid()))
        del args[at : at + 2]
    print("pe-test-server: started", file=sys.stderr, flush=True)
    if args[:1] == ["http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(args[1]))
    else:
        server.run()


if __name__ == "__main__":
    main()
