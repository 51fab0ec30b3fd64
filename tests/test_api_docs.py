"""The code blocks of docs/api.md run, in order, in one namespace, in an empty folder (smoke budgets)."""
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_api_doc_examples_run(tmp_path, monkeypatch, data_home):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{DOC.name} block {i + 1}", "exec"), namespace)
    assert (tmp_path / "runs" / "bars" / "model.json").exists()


def test_api_surface_is_typed_and_documented():
    import inspect

    import mnistlab as ml

    for name in ("fewlabel", "supervised", "detect", "gan", "study", "load", "export"):
        fn = getattr(ml, name)
        assert fn.__doc__, name
        sig = inspect.signature(fn)
        assert sig.return_annotation is not inspect.Signature.empty, name
        assert all(p.annotation is not inspect.Parameter.empty for p in sig.parameters.values()), name
