"""The command line: parse, call the library, write files. Nothing is computed here."""

from redundancy.cli.commands import build_parser, main

__all__ = ["build_parser", "main"]
