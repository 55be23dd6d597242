"""Run the local Hub standalone: `python -m tests.hubserver --port 8765`."""

from __future__ import annotations

import argparse
import logging
import threading

from .server import DEFAULT_TOKENS, HubServer


def _parse_token(spec: str) -> tuple[str, tuple[str, str]]:
    """Parse `TOKEN=USER:ROLE` (role defaults to write)."""
    token, _, owner = spec.partition("=")
    user, _, role = owner.partition(":")
    if not token or not user or role not in ("", "write", "read"):
        raise argparse.ArgumentTypeError(f"expected TOKEN=USER[:write|read], got {spec!r}")
    return token, (user, role or "write")


def main(argv: list[str] | None = None) -> None:
    """Start the server and block until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m tests.hubserver", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument(
        "--token", action="append", type=_parse_token, default=[], help="TOKEN=USER[:ROLE]; repeatable"
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    tokens = dict(args.token) if args.token else DEFAULT_TOKENS
    server = HubServer(tokens, host=args.host, port=args.port).start()
    print(f"Local Hub at {server.url}")
    for token, (user, role) in tokens.items():
        print(f"  token {token} -> {user} ({role})")
    print(f"  export HF_ENDPOINT={server.url} HF_TOKEN={next(iter(tokens))} HF_HUB_DISABLE_XET=1", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
