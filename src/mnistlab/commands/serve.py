"""`mnistlab serve`: the local draw-a-digit page and JSON API (FastAPI + uvicorn), on 127.0.0.1 by default."""
from __future__ import annotations

import argparse

from mnistlab.commands._args import add_flags
from mnistlab.serve.launch import launch


def register(sub) -> None:
    p = sub.add_parser("serve", help="web page + JSON API: draw a digit, see what the networks think",
                       description="Serve trained runs on a local web page and a JSON API (schema at /openapi.json).")
    p.add_argument("--run", action="append", required=True, metavar="DIR",
                   help="classifier run folder (repeat for several; the first answers at the top level)")
    p.add_argument("--detector", metavar="DIR", help="digit/non-digit detector run folder (adds p_digit; default: none)")
    p.add_argument("--gan", metavar="DIR", help="GAN run folder (enables /api/gan/sample and the GAN panel; default: none)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default %(default)s)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="also answer requests for this Host name (default: the --host and localhost names only, "
                        "against DNS rebinding; any IP address too when --host is 0.0.0.0 or ::)")
    p.add_argument("--inference", choices=("batched", "locked", "concurrent"), default="batched",
                   help="batched (default): concurrent requests share forward passes; locked: one image at a time, "
                        "bitwise equal to offline inference; concurrent: no lock")
    add_flags(p, "threads", "device", threads={"default": 1, "help": "torch threads for inference (default 1: one "
                                                                      "28×28 image does not gain from more)"},
              device={"default": "cpu", "help": "cpu | auto | cuda | cuda:N | mps: where the models run (default cpu)"})
    p.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    launch(args.run, detector=args.detector, gan=args.gan, host=args.host, port=args.port, inference=args.inference,
           threads=args.threads, allowed_host=args.allowed_host, device=args.device)
    return 0
