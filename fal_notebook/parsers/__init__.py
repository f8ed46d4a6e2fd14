"""The one grammar shared by ``%fal`` and the ``fal-notebook`` CLI: model calls, cell bodies, subcommands.

No IPython and no httpx: parsers return typed objects (``ModelCall``, one dataclass per subcommand).
"""

from .cell_body import interpolate, parse_cell_body
from .commands import *  # noqa: F403 - the subcommand dataclasses
from .commands import __all__ as _commands
from .grammar import (
    SUBCOMMANDS,
    FalArgumentParser,
    Subcommand,
    magic_parser,
    parse_cell,
    parse_magic_line,
    split_line,
)
from .model_call import ModelCall, build_model_call, coerce_value, magic_line, model_usage

__all__ = [
    "FalArgumentParser", "Subcommand", "SUBCOMMANDS", "ModelCall", "parse_magic_line", "parse_cell",
    "build_model_call", "coerce_value", "split_line", "parse_cell_body", "interpolate", "model_usage",
    "magic_parser", "magic_line", *_commands,
]
