"""The `mnistlab` command: subcommands are discovered from `mnistlab.commands` (one module each, no logic here)."""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import signal
import sys
import threading

import mnistlab.commands
from mnistlab import __version__
from mnistlab.errors import MnistlabError

FIRST = ("run", "config")  # the commands a newcomer needs first; the others follow alphabetically
EXAMPLES = """examples:
  mnistlab run                                     the whole study → runs/study/report.html (≈ 30 min)
  mnistlab fewlabel --labels 100                   learn MNIST from 100 labels (the dataset's best recipe)
  mnistlab supervised --model mlp --hidden 256     a supervised MLP on all 60k labelled images
  mnistlab reject --run RUN --ood fashion-mnist    classification with rejection from a trained run
  mnistlab config show fewlabel --budget smoke     the settings a command would use, and where each comes from
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 — like every other user error
        self.exit(2, f"mnistlab: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mnistlab", description="Few-label learning, generation and study of MNIST-family images.",
                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"mnistlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    mods = pkgutil.iter_modules(mnistlab.commands.__path__)
    for mod in sorted(mods, key=lambda m: (m.name not in FIRST, FIRST.index(m.name) if m.name in FIRST else 0, m.name)):
        if not mod.name.startswith("_"):
            importlib.import_module(f"mnistlab.commands.{mod.name}").register(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, `timeout`, a job scheduler): stopped as cleanly as by Ctrl-C — `finally` blocks run, temporary
    files go, the last checkpoint stays."""


def _terminate(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    on_main = threading.current_thread() is threading.main_thread()  # signal handlers can only be set there
    old = signal.signal(signal.SIGTERM, _terminate) if on_main else None
    try:
        return _main(argv)
    finally:
        if on_main:
            signal.signal(signal.SIGTERM, old)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # usage errors (one line, exit 2), --help, --version: a code, also for in-process callers
        return e.code if isinstance(e.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MnistlabError as e:
        print(f"mnistlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(f"mnistlab: {'terminated' if isinstance(e, Terminated) else 'interrupted'}; finished artefacts are "
              f"kept, `--resume` continues a training run", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except MemoryError:
        print("mnistlab: error: out of memory", file=sys.stderr)
        return 1
    except OSError as e:  # disk full, permissions, a vanished file: what the system said, on one line
        where = f": {e.filename}" if e.filename else ""
        print(f"mnistlab: error: {e.strerror or e}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
