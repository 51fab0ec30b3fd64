"""`mnistlab export --run DIR --format onnx|torchscript [--out FILE]`: a classifier run as a file that runs without
mnistlab, checked against mnistlab's own probabilities (mnistlab/exporter.py)."""
from __future__ import annotations

import json


def _run(args) -> int:
    from mnistlab.exporter import export_run  # onnx / onnxruntime are an optional extra

    rec = export_run(args.run, format=args.format, out=args.out)
    if args.json:
        print(json.dumps(rec))
    else:
        c = rec["check"]
        print(f"{rec['file']} (+ {rec['file']}.json): uint8 images {rec['input']['shape']} → probabilities "
              f"{rec['output']['shape']}; checked on {c['batch']}: max abs diff {c['max_abs_diff']:.2e} ≤ "
              f"{c['tolerance']:g} ({c['precision']})")
    return 0


def register(sub) -> None:
    p = sub.add_parser("export", help="export a classifier run to ONNX or TorchScript (checked against mnistlab)")
    p.add_argument("--run", required=True, help="a finished classifier run folder")
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx",
                   help="onnx (needs the export extra: onnx, onnxruntime) or torchscript (default onnx)")
    p.add_argument("--out", help="output file (default RUN/model.onnx or RUN/model.pt; FILE.json is written beside)")
    p.add_argument("--json", action="store_true", help="print the export record as JSON (default: one line)")
    p.set_defaults(func=_run)
