"""``fal-notebook``: every command of the original skill, JSON on stdout, documented exit codes."""

from .app import build_parser, main

__all__ = ["main", "build_parser"]
