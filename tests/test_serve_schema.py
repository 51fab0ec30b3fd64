"""Schemathesis against the serve app's OpenAPI schema: generated requests, valid and invalid, never get a 5xx, and
every answer has a documented status code, content type and body schema."""
import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the `test` extra")
from hypothesis import HealthCheck, given, settings  # noqa: E402

from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

from mnistlab.serve.app import create_app  # noqa: E402

pytestmark = pytest.mark.slow  # the app over a trained run, probed by schemathesis



@pytest.fixture(scope="module")
def api_schema(tmp_path_factory, serve_classifier):
    """The app with every optional part loaded: classifier, (untrained) detector and conditional GAN."""
    import torch

    from mnistlab.models import create_model, model_spec
    from mnistlab.models.gan import build_generator, gan_spec
    from mnistlab.runs import Run

    root = tmp_path_factory.mktemp("schema")
    torch.manual_seed(0)
    Run(root / "det").save_model(create_model("cnn-small", num_classes=2),
                                 model_spec("cnn-small", in_shape=(1, 28, 28), num_classes=2))
    spec = gan_spec(num_classes=10)
    Run(root / "cgan").save_model(build_generator(spec).eval(), spec, name="generator")
    app = create_app(serve_classifier, detector_dir=root / "det",
                     gan_dir=root / "cgan")
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=str)
def test_api_conforms_to_its_schema(api_schema, mode):
    seen = set()

    @given(case=api_schema.as_strategy(mode))
    @settings(max_examples=60, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def check(case):
        seen.add((case.method, case.path))
        # "binary" cannot say "a decodable image with some ink", so arbitrary bytes are schema-valid yet rightly get a
        # 400; for image bodies we check everything except "schema-valid data must be accepted"
        binary = case.media_type is not None and case.media_type != "application/json"
        case.call_and_validate(excluded_checks=[positive_data_acceptance] if binary else None)

    check()
    assert ("POST", "/api/predict") in seen and ("GET", "/api/gan/sample") in seen
