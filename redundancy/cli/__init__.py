"""The command line: parse, call the library, write files. Nothing is computed here.

The face is :func:`main`; the parser is :func:`redundancy.cli.commands.build_parser`.
"""

from redundancy.cli.commands import main

__all__ = ["main"]
