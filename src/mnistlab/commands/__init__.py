"""CLI subcommands, one module each; each exposes `register(subparsers)` and sets `func` on its parser(s)."""
