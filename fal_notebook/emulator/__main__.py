"""``python -m fal_notebook.emulator [--host H] [--port P] [--scenario S]``: a local fal, until Ctrl-C."""

from __future__ import annotations

import argparse
import sys

from fal_notebook.emulator.knobs import SCENARIOS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fal-notebook emulator",
                                     description="Run a local fal.ai emulator (queue, storage, CDN) on loopback.")
    parser.add_argument("--host", default="127.0.0.1", help="Interface to listen on (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=8765, help="Port to listen on; 0 picks a free one.")
    parser.add_argument("--scenario", default="fast", choices=sorted(SCENARIOS),
                        help="Timing or fault scenario (default fast).")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Prints ``fal emulator listening on http://HOST:PORT`` once, then serves until SIGINT/SIGTERM."""
    from fal_notebook.emulator.server import serve

    args = build_parser().parse_args(argv)
    try:
        serve(args.host, args.port, args.scenario)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        sys.stderr.write(f"fal emulator: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
