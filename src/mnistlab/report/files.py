"""Writers for analyses that add artefacts to an existing folder (not a training run folder): atomic, no half files."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mnistlab import fileio  # noqa: E402


def save_png(path: str | Path, fig: Any) -> None:
    """Save a matplotlib figure as PNG (atomically) and close it."""
    try:
        with fileio.atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)


def save_npy(path: str | Path, arr: np.ndarray) -> None:
    """A numpy array as .npy (no pickle), atomically."""
    with fileio.atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, arr, allow_pickle=False)
