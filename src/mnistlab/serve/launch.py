"""Start the web page and JSON API (`mnistlab serve`): check the port, then run uvicorn in this process."""
from __future__ import annotations

import socket

from mnistlab.errors import MnistlabError
from mnistlab.precision import setup_threads


def launch(runs: list[str], *, detector: str | None = None, gan: str | None = None, host: str = "127.0.0.1",
           port: int = 8000, inference: str = "batched", threads: int = 1, allowed_host: list[str] = (),
           device: str = "cpu") -> None:
    """Serve `runs` (classifier run folders; the first answers at the top level) until Ctrl-C; requests for Host
    names other than `host`, localhost and `allowed_host` are refused (against DNS rebinding)."""
    try:  # the `serve` extra (FastAPI, uvicorn) is optional: imported only here, where it is needed
        import uvicorn

        from mnistlab.serve.app import JsonErrorProtocol, allowed_hosts, create_app
    except ImportError as e:
        raise MnistlabError(f"serve needs the `serve` extra ({e.name} is missing): pip install 'mnistlab[serve]'") \
            from None
    if not 0 < port < 65536:
        raise MnistlabError(f"--port {port} is not a TCP port (1–65535)")
    setup_threads(threads)
    names, any_ip = allowed_hosts(host, list(allowed_host))
    app = create_app(runs, detector_dir=detector, gan_dir=gan, inference=inference, allowed_hosts=names,
                     any_ip=any_ip, device=device)
    check_bind(host, port)  # a busy port is a one-line error, not uvicorn's log + exit 1
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"mnistlab: note: binding {host} exposes the server beyond this machine")
    print(f"mnistlab: serving {', '.join(runs)} on http://{host}:{port}/ (OpenAPI schema at /openapi.json; "
          "Ctrl-C stops)", flush=True)
    # uvicorn's own 400s (malformed request, oversized headers) answer JSON like the app's
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, http=JsonErrorProtocol)


def check_bind(host: str, port: int) -> None:
    """Can we listen on host:port? (uvicorn itself would log the error and exit 1.)"""
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
