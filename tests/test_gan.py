"""GAN: network shapes/ranges, one D+G step, metrics on hand-made inputs, seeded sampling, a smoke run end to end."""
import json

import numpy as np
import pytest
import torch

from mnistlab.evaluate import gan_metrics as gm
from mnistlab.models.gan import Discriminator, Generator, build_gan, gan_spec, recalibrate_bn, sample


@pytest.mark.parametrize("k", [0, 10])
def test_generator_and_discriminator_shapes_and_ranges(k):
    torch.manual_seed(0)
    G, D = Generator(nz=16, width=8, num_classes=k), Discriminator(width=8, num_classes=k)
    y = torch.arange(6) % 10 if k else None
    x = G(torch.randn(6, 16) * 10, y)  # large noise: the tanh must still bound the output
    assert x.shape == (6, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    out = D(x, y)
    assert out.shape == (6,) and torch.isfinite(out).all()
    if k:
        with pytest.raises(ValueError):
            G(torch.randn(2, 16))


@pytest.mark.parametrize("k", [0, 10])
def test_one_d_and_g_step_changes_both_and_stays_finite(k):
    from mnistlab.methods.gan import gan_step

    torch.manual_seed(0)
    gan = build_gan(gan_spec(nz=16, g_width=8, d_width=8, num_classes=k))
    opt_d = torch.optim.Adam(gan.D.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(gan.G.parameters(), 2e-4, betas=(0.5, 0.999))
    d0 = [p.detach().clone() for p in gan.D.parameters()]
    g0 = [p.detach().clone() for p in gan.G.parameters()]
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    y = torch.arange(8) % 10 if k else None
    logs = gan_step(gan, opt_d, opt_g, x, y, torch.randn(8, 16))
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert 0 < float(logs["d_real"]) < 1 and 0 < float(logs["d_fake"]) < 1
    assert any(not torch.equal(a, b) for a, b in zip(d0, gan.D.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(g0, gan.G.parameters()))
    assert all(p.requires_grad for p in gan.D.parameters())  # the G step froze D only while it ran


def test_mnist_score_on_hand_made_probabilities():
    one_class = np.tile(np.eye(10)[3], (500, 1))
    assert gm.mnist_score(one_class) == pytest.approx(1.0, abs=1e-6)
    confident_uniform = np.eye(10)[np.arange(1000) % 10]
    assert gm.mnist_score(confident_uniform) == pytest.approx(10.0, abs=1e-6)
    unsure = np.full((100, 10), 0.1)
    assert gm.mnist_score(unsure) == pytest.approx(1.0, abs=1e-6)
    half = np.eye(10)[np.arange(1000) % 5]  # five classes, confident: score 5
    assert gm.mnist_score(half) == pytest.approx(5.0, abs=1e-6)
    mean, std = gm.mnist_score_splits(confident_uniform, splits=10)
    assert mean == pytest.approx(10.0, abs=1e-6) and std < 1e-6


def test_frechet_distance_on_hand_made_features():
    f = np.random.default_rng(0).normal(size=(2000, 8))
    assert gm.frechet_distance(f, f) == pytest.approx(0.0, abs=1e-8)
    assert gm.frechet_distance(f, f + 2.0) == pytest.approx(8 * 4.0, rel=1e-6)  # mean shift only: ‖Δμ‖²
    # two Gaussians with covariances I and 4I: tr(I + 4I − 2·2I) = D
    g = np.random.default_rng(1).normal(size=(200000, 2))
    assert gm.frechet_distance(g, 2 * g) == pytest.approx(2.0, rel=1e-2)
    with pytest.raises(ValueError):
        gm.frechet_distance(f, f[:, :3])


def test_histogram_agreement_and_nearest_neighbours():
    h = gm.class_histogram(np.array([0, 0, 1, 3]), 4)
    assert h["fractions"] == [0.5, 0.25, 0.0, 0.25] and h["classes_covered"] == 3 and h["min_fraction"] == 0
    uniform = gm.class_histogram(np.arange(100) % 10, 10)
    assert uniform["kl_to_uniform"] == pytest.approx(0.0, abs=1e-9) and uniform["max_fraction"] == 0.1
    a = gm.conditional_agreement(np.array([1, 1, 2, 0]), np.array([1, 1, 1, 0]), 3)
    assert a["agreement"] == 0.75 and a["per_class"] == [1.0, 2 / 3, None]
    ref = np.random.default_rng(0).integers(0, 256, (50, 1, 28, 28), dtype=np.uint8)
    assert np.allclose(gm.nearest_neighbour_distances(ref[:5], ref), 0, atol=1e-3)  # copies: distance 0
    shifted = ref[:3].astype(np.int32)
    shifted[:, 0, 0, 0] = np.where(shifted[:, 0, 0, 0] > 127, shifted[:, 0, 0, 0] - 51, shifted[:, 0, 0, 0] + 51)
    d = gm.nearest_neighbour_distances(shifted.astype(np.uint8), ref)
    assert np.allclose(d, 0.2, atol=1e-3)  # one pixel off by 51/255


def test_sampling_is_deterministic_by_seed():
    torch.manual_seed(0)
    G = Generator(nz=16, width=8, num_classes=10)
    recalibrate_bn(G, batches=2, batch_size=32)
    a, ya = sample(G, 25, seed=3)
    b, _ = sample(G, 25, seed=3, batch_size=7)  # chunking does not change the images
    c, _ = sample(G, 25, seed=4)
    assert a.dtype == torch.uint8 and a.shape == (25, 1, 28, 28)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert ya.tolist() == [i % 10 for i in range(25)]
    d, yd = sample(G, 5, seed=3, digit=7)
    assert yd.tolist() == [7] * 5


@pytest.mark.slow
def test_smoke_cgan_train_sample_eval(cli, tmp_path, monkeypatch):
    from mnistlab import api

    out = tmp_path / "cgan"
    code, stdout, err = cli("gan", "train", "--conditional", "--dataset", "mnist", "--budget", "smoke",
                            "--threads", "1", "--out", out, "--json",
                            "--set", "train_subset=576")  # 9 steps an epoch: not a multiple of the eval interval
    assert code == 0, err
    m = json.loads(stdout)
    assert m["method"] == "cgan" and m["conditional"] and np.isfinite(m["loss_d"]) and np.isfinite(m["loss_g"])
    grids = sorted(p.name for p in (out / "grids").glob("*.png"))
    assert grids == ["epoch_000.png", "epoch_001.png", "epoch_002.png"]  # untrained + one per epoch
    from PIL import Image

    with Image.open(out / "training.gif") as gif:
        assert gif.n_frames == 3
    for name in ("gan_curves.png", "samples.png", "generator.json", "generator.safetensors", "metrics.jsonl"):
        assert (out / name).exists(), name
    assert not (out / "checkpoint.safetensors").exists()
    hist = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"train_loss_d", "train_loss_g", "train_d_real", "train_d_fake"} <= set(hist[-1])

    npy = tmp_path / "s.npy"
    code, _, err = cli("gan", "sample", "--run", out, "--n", 12, "--digit", 4, "--seed", 1, "--out", npy)
    assert code == 0, err
    arr = np.load(npy)
    assert arr.shape == (12, 28, 28) and arr.dtype == np.uint8
    assert cli("gan", "sample", "--run", out, "--n", 12, "--digit", 4, "--seed", 1, "--out", tmp_path / "t.npy")[0] == 0
    assert np.array_equal(arr, np.load(tmp_path / "t.npy"))
    assert cli("gan", "sample", "--run", out, "--n", 12, "--out", tmp_path / "g.png")[0] == 0
    code, _, err = cli("gan", "sample", "--run", out, "--n", 3, "--out", tmp_path / "x.txt")
    assert code == 2 and ".npy or .png" in err

    # the evaluation classifier: trained once into the (redirected) cache, then reused without training
    monkeypatch.setattr(api, "classifier_cache_root", lambda: tmp_path / "cache")
    clf = api.cached_classifier("mnist", budget="smoke")
    monkeypatch.setattr(api, "train", lambda *a, **k: pytest.fail("the cached classifier was retrained"))
    assert api.cached_classifier("mnist", budget="smoke").dir == clf.dir
    import mnistlab.runs

    monkeypatch.setattr(mnistlab.runs, "source_fingerprint", lambda *m: "edited")  # its training code changed
    with pytest.raises(pytest.fail.Exception, match="retrained"):
        api.cached_classifier("mnist", budget="smoke")

    code, stdout, err = cli("gan", "eval", "--run", out, "--classifier", clf.dir, "--n", 200, "--json")
    assert code == 0, err
    res = json.loads(stdout)
    assert 1 <= res["mnist_score"] <= 10 and res["fid"] >= 0 and res["fid_floor_train_vs_test"] >= 0
    assert 0 <= res["conditional_agreement"] <= 1 and len(res["class_histogram"]["fractions"]) == 10
    assert res["nn_distance_generated_median"] > 0 and (out / "gan_eval.json").exists()
    assert set(res["targets"]) == {"mnist_score>=9.5", "class_share_8-12%", "fid<=3x_floor", "agreement>=98%"}


@pytest.mark.slow
def test_unfinished_run_is_evaluated_from_its_checkpoint(tmp_path):
    from mnistlab.runs import load_generator
    from mnistlab.runs import Run
    from mnistlab.runs import save_checkpoint

    from mnistlab.config import to_dict
    from mnistlab.methods.gan import CGANConfig

    cfg = CGANConfig(nz=16, g_width=8, d_width=8)
    run = Run(tmp_path / "r")
    run.start(cfg, command="gan train", method="cgan")
    torch.manual_seed(0)
    gan = build_gan(gan_spec(nz=16, g_width=8, d_width=8, num_classes=10))
    save_checkpoint(run.path("checkpoint.safetensors"), gan, {}, {"step": 42, "history": []})
    G, spec = load_generator(run.dir)
    assert spec["checkpoint_step"] == 42 and spec["num_classes"] == 10 and to_dict(cfg)["nz"] == G.nz
    for a, b in zip(G.parameters(), gan.G_ema.parameters()):
        assert torch.equal(a, b)
