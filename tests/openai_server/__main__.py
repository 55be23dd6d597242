"""Run the OpenAI-protocol stand-in standalone: `python -m tests.openai_server --port 8766`."""

from __future__ import annotations

import argparse
import logging
import threading

from .server import Fault, OpenAIServer

#: the models the test fixtures serve, so the README's walk-through runs against this as it is
DEFAULT_MODELS = ("stand-in-small", "stand-in-large", "stand-in-judge")


def main(argv: list[str] | None = None) -> None:
    """Start the server and block until Ctrl-C (or SIGTERM)."""
    parser = argparse.ArgumentParser(prog="python -m tests.openai_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766, help="0 picks a free port")
    parser.add_argument("--model", action="append", default=[],
                        help=f"a model id to serve; repeatable (default: {', '.join(DEFAULT_MODELS)})")
    parser.add_argument("--token", default=None, help="require this Bearer token")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per completion")
    parser.add_argument("--position-bias", choices=["none", "first"], default="none")
    parser.add_argument("--fail-every", type=int, default=0, help="every N-th completion answers 429")
    parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of those 429s")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    server = OpenAIServer(models=args.model or list(DEFAULT_MODELS), token=args.token, latency=args.latency,
                          position_bias=args.position_bias, host=args.host, port=args.port)
    if args.fail_every:
        server.fail_every(args.fail_every, Fault(status=429, retry_after=args.retry_after))
    server.start()
    print(f"OpenAI-compatible stand-in at {server.base_url} serving {', '.join(server.models)}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
