"""Atomic writers for commands that add artefacts to an existing folder (not a new training run folder)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mnistlab import fileio


def save_png(path: str | Path, fig: Any) -> None:
    """Save a matplotlib figure as PNG (atomically) and close it."""
    import matplotlib.pyplot as plt

    try:
        with fileio.atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)


def save_npy(path: str | Path, arr: np.ndarray) -> None:
    with fileio.atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, arr, allow_pickle=False)
