"""``python -m redundancy`` runs the command-line interface."""

from redundancy.cli import main

raise SystemExit(main())
