"""Same seeds → same metrics: every method's smoke run matches the values recorded before the architecture refactor.

The record (tests/data/smoke_metrics.json, written by tests/smoke_invariance.py) is machine-specific: fp32 kernels
differ in their last digits across CPU feature sets, so on a CPU with other flags the test skips (and says why).
"""
import json
import math

import pytest

from smoke_invariance import RECORD, cpu_flags, smoke_metrics

from mnistlab.methods import METHODS

REC = json.loads(RECORD.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS.names())
def test_smoke_metrics_unchanged(method, tmp_path):
    if cpu_flags() != REC["cpu_flags"]:
        pytest.skip(f"recorded on a CPU with {REC['cpu_flags']}, this one has {cpu_flags()}: kernels differ")
    if method not in REC["methods"]:
        pytest.skip(f"{method} is newer than the record; rerun tests/smoke_invariance.py on the old code to add it")
    got, want = smoke_metrics(method, tmp_path), REC["methods"][method]
    assert set(got) == set(want), f"metric names changed: {set(got) ^ set(want)}"
    off = {k: (got[k], want[k]) for k in want if not math.isclose(got[k], want[k], rel_tol=1e-6, abs_tol=1e-12)}
    assert not off, f"{method}: metrics moved (got, recorded): {off}"
