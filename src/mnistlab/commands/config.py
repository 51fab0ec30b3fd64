"""`mnistlab config show COMMAND`: the config a training command would run with, and where each value comes from."""
from __future__ import annotations

import json

from mnistlab import api
from mnistlab.commands._args import add_flags, overrides
from mnistlab.commands.fewlabel import KEYS as FEWLABEL_KEYS
from mnistlab.commands.fewlabel import method_and_recipe
from mnistlab.methods.recipes import COMMANDS, command_method
from mnistlab.report.summaries import config_lines


def resolve(args) -> tuple[str, dict]:
    """(method, {field: (value, source)}) as `mnistlab COMMAND` with these flags would resolve them."""
    method, recipe = method_and_recipe(args) if args.cmd == "fewlabel" else command_method(args.cmd, args.method)
    return method, api.config_sources(method, budget=args.budget, config_file=args.config,
                                      overrides=overrides(args, FEWLABEL_KEYS), recipe=recipe)


def _show(args) -> int:
    method, fields = resolve(args)
    if args.json:
        print(json.dumps({"command": args.cmd, "method": method,
                          "config": {k: {"value": v, "source": s} for k, (v, s) in fields.items()}}))
        return 0
    print("\n".join(config_lines(args.cmd, method, args.budget, fields)))
    return 0


def register(sub) -> None:
    p = sub.add_parser("config", help="show the resolved config of a training command, with each value's source")
    csub = p.add_subparsers(dest="config_command", metavar="{show}", required=True)
    s = csub.add_parser("show", help="the config COMMAND would run with: each field, its value and its source "
                                     "(default / recipe / budget / file / flag)")
    s.add_argument("cmd", metavar="COMMAND", choices=COMMANDS, help=f"one of {', '.join(COMMANDS)}")
    s.add_argument("--method", help="the method (default: the command's; fewlabel: the dataset's recipe)")
    s.add_argument("--dataset", help="dataset name (default mnist; fewlabel picks its recipe by it)")
    add_flags(s, "budget", "config", "set", "json", json={"help": "print {field: {value, source}} as JSON (default: a table)"})
    s.set_defaults(func=_show)
