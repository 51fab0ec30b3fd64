"""`mnistlab serve`: the local draw-a-digit page and JSON API (FastAPI + uvicorn), on 127.0.0.1 by default."""
from __future__ import annotations

import argparse

from mnistlab.commands._args import threads_arg
from mnistlab.errors import MnistlabError


def register(sub) -> None:
    p = sub.add_parser("serve", help="web page + JSON API: draw a digit, see what the networks think",
                       description="Serve trained runs on a local web page and a JSON API (schema at /openapi.json).")
    p.add_argument("--run", action="append", required=True, metavar="DIR",
                   help="classifier run folder (repeat for several; the first answers at the top level)")
    p.add_argument("--detector", metavar="DIR", help="digit/non-digit detector run folder (adds p_digit)")
    p.add_argument("--gan", metavar="DIR", help="GAN run folder (enables /api/gan/sample and the GAN panel)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="also answer requests for this Host name (default: the --host and localhost names only, "
                        "against DNS rebinding; any IP address too when --host is 0.0.0.0 or ::)")
    p.add_argument("--inference", choices=("batched", "locked", "concurrent"), default="batched",
                   help="batched (default): concurrent requests share forward passes; locked: one image at a time, "
                        "bitwise equal to offline inference; concurrent: no lock")
    p.add_argument("--threads", type=threads_arg, default=1,
                   help="torch threads for inference (default 1: one 28×28 image does not gain from more)")
    p.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from mnistlab.serve.app import JsonErrorProtocol, allowed_hosts, create_app
    except ImportError as e:
        raise MnistlabError(f"serve needs the `serve` extra ({e.name} is missing): pip install 'mnistlab[serve]'") \
            from None
    import torch

    if not 0 < args.port < 65536:
        raise MnistlabError(f"--port {args.port} is not a TCP port (1–65535)")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    names, any_ip = allowed_hosts(args.host, args.allowed_host)
    app = create_app(args.run, detector_dir=args.detector, gan_dir=args.gan, inference=args.inference,
                     allowed_hosts=names, any_ip=any_ip)
    check_bind(args.host, args.port)  # a busy port is a one-line error, not uvicorn's log + exit 1
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"mnistlab: note: binding {args.host} exposes the server beyond this machine")
    print(f"mnistlab: serving {', '.join(args.run)} on http://{args.host}:{args.port}/ "
          f"(OpenAPI schema at /openapi.json; Ctrl-C stops)", flush=True)
    # uvicorn's own 400s (malformed request, oversized headers) answer JSON like the app's
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False, http=JsonErrorProtocol)
    return 0


def check_bind(host: str, port: int) -> None:
    """Can we listen on host:port? (uvicorn itself would log the error and exit 1.)"""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise MnistlabError(f"--host {host}: {e.strerror}") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            s.bind(addr)
        except OSError as e:
            raise MnistlabError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
