"""Font family: letters and symbols that no one writes as a digit, rendered from font files at MNIST placement."""
from __future__ import annotations

import numpy as np

from mnistlab.data import fonts as fontlib
from mnistlab.data.negatives import FAMILIES


@FAMILIES.register("letters", kind="font", about="letters/symbols from font files, MNIST placement, stroke/slant/elastic")
def letters(n: int, rng: np.random.Generator, *, fonts: list[str]) -> np.ndarray:
    return fontlib.render(n, rng, chars=fontlib.NON_DIGITS, fonts=fonts)[0]
