"""mnistlab: few-label learning, generation and study of MNIST-family images on a CPU, offline and reproducibly.

    import mnistlab as ml
    run = ml.fewlabel(dataset="folder:scans/", labels=100, out="runs/scans")
    probs = ml.load("runs/scans").predict_proba(images)      # docs/api.md

The API (mnistlab/python_api.py) is imported on first use, so `import mnistlab` and `mnistlab --version` stay light.
"""

__version__ = "0.1.0"
__all__ = ["fewlabel", "supervised", "detect", "gan", "study", "load", "export", "Model", "RunResult",
           "MnistlabError", "__version__"]


def __getattr__(name: str):
    # imports on first use (PEP 562): the package's own __init__ cannot import the modules below it at import time,
    # and `mnistlab --version` should not load torch
    if name == "export":
        from mnistlab.exporter import export_run  # onnx / torchscript, on first use

        return export_run
    if name == "MnistlabError":
        from mnistlab.errors import MnistlabError

        return MnistlabError
    if name in __all__:
        from mnistlab import python_api

        return getattr(python_api, name)
    raise AttributeError(f"module 'mnistlab' has no attribute {name!r}")
