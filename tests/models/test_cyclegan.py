"""CycleGAN (Zhu et al. 2017): losses by hand, the image pool, resume, translation, errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from gankit import registry
from gankit.config import load_config
from gankit.engine import resume, train
from gankit.engine.checkpoint import load_state
from gankit.errors import CheckpointError, ConfigError, DataError
from gankit.models.cyclegan import (
    ImagePool,
    cycle_loss,
    identity_loss,
    load_cyclegan,
    translate_files,
)
from gankit.nets.cyclegan import PatchDiscriminator, build_networks
from gankit.objectives import least_squares_d, least_squares_g

RECIPE = "configs/digits-cyclegan.yaml"
TINY = [
    "model.g_width=4",
    "model.d_width=4",
    "model.g_blocks=1",
    "model.pool_size=6",
    "model.identity_weight=1.0",
    "train.batch_size=4",
    "train.steps=6",
    "train.progress=false",
    "train.log_every=1",
    "train.checkpoint_every=100",
    "train.sample_every=100",
]


def tiny(*extra):
    return load_config(RECIPE, [*TINY, *extra])


def test_losses_match_hand_computed_values():
    # least squares on a PatchGAN grid: every logit counts (Mao et al. 2017, a=0, b=c=1)
    real = torch.tensor([[[[1.0, 0.0], [2.0, 1.0]]]])
    fake = torch.tensor([[[[0.0, 1.0], [0.5, -1.0]]]])
    assert least_squares_d(real, fake).item() == pytest.approx(0.5 * 2 / 4 + 0.5 * 2.25 / 4)
    assert least_squares_g(fake).item() == pytest.approx(0.5 * (1 + 0 + 0.25 + 4) / 4)
    a, rec_a = torch.tensor([0.0, 1.0]), torch.tensor([0.5, 0.0])
    b, rec_b = torch.tensor([-1.0, 1.0]), torch.tensor([-1.0, 0.0])
    # λ (E|F(G(a)) - a| + E|G(F(b)) - b|) = 10 (0.75 + 0.5)
    assert cycle_loss(a, rec_a, b, rec_b, 10.0).item() == pytest.approx(12.5)
    # λ (E|G(b) - b| + E|F(a) - a|) with F(a) = rec_a, G(b) = rec_b: 5 (0.5 + 0.75)
    assert identity_loss(a, rec_a, b, rec_b, 5.0).item() == pytest.approx(6.25)


def test_patch_discriminator_gives_a_grid_or_one_logit():
    x = torch.zeros(3, 1, 8, 8)
    assert PatchDiscriminator(1, 4, 2, "instance", patch=True)(x).shape == (3, 1, 2, 2)
    assert PatchDiscriminator(1, 4, 2, "instance", patch=False)(x).shape == (3,)
    arch = {"shape": [3, 32, 32], "g_width": 4, "d_width": 4, "g_blocks": 1, "d_layers": 3}
    nets = build_networks({**arch, "norm": "batch", "patch": True})  # 32 px too
    assert nets["g_ab"](torch.zeros(2, 3, 32, 32)).shape == (2, 3, 32, 32)
    assert nets["d_b"](torch.zeros(2, 3, 32, 32)).shape == (2, 1, 4, 4)
    small = {**arch, "shape": [1, 8, 8], "norm": "none", "patch": False, "g_global": True}
    g = build_networks(small)["g_ab"]  # the dense bottleneck starts as the identity
    assert g(torch.zeros(2, 1, 8, 8)).shape == (2, 1, 8, 8)
    with pytest.raises(ConfigError, match="dense bottleneck at 32 px"):
        build_networks({**arch, "norm": "none", "patch": True, "g_global": True})


def test_image_pool_fills_then_swaps_with_probability_half():
    pool = ImagePool(3, seed=0)
    first = torch.tensor([[0.0], [1.0]])
    assert torch.equal(pool.query(first), first) and pool.count == 2  # filling: returned as is
    new = torch.tensor([[2.0], [10.0], [11.0], [12.0], [13.0], [14.0], [15.0], [16.0]])
    out = pool.query(new).view(-1).tolist()
    assert out[0] == 2.0 and pool.count == 3  # the last free slot
    held, kept, swapped = {0.0, 1.0, 2.0}, 0, 0
    for fake, shown in zip(new.view(-1).tolist()[1:], out[1:], strict=True):
        if shown == fake:  # the new fake itself
            kept += 1
        else:  # a stored fake, replaced in the pool by the new one
            assert shown in held
            held = (held - {shown}) | {fake}
            swapped += 1
    assert kept > 0 and swapped > 0 and held == set(pool.images.view(-1).tolist())
    copy = ImagePool(3, seed=99)
    copy.load_state_dict(pool.state_dict())
    more = torch.tensor([[20.0], [21.0], [22.0], [23.0]])
    assert torch.equal(pool.query(more), copy.query(more))  # the state is the whole pool
    assert torch.equal(ImagePool(0, 0).query(more), more)


def test_trains_from_the_recipe_and_resumes_bit_identically(tmp_path):
    full = train(tiny(), tmp_path / "full")
    part = train(tiny("train.steps=3"), tmp_path / "part")
    resumed = resume(part.path, ["train.steps=6"])
    assert full.step == resumed.step == 6
    a, b = load_state(full.path), load_state(resumed.path)
    for net in ("g_ab", "g_ba", "d_a", "d_b"):
        sa, sb = a["networks"][net], b["networks"][net]
        assert all(torch.equal(sa[k], sb[k]) for k in sa), net
    assert torch.equal(a["model"]["pool_a"]["images"], b["model"]["pool_a"]["images"])
    last = full.history[-1]
    assert {"loss_g", "loss_d", "cycle", "identity"} <= set(last) and last["identity"] > 0
    # the model directory translates both ways; errors name the problem
    model = load_cyclegan(full.path)
    x = torch.zeros(2, 1, 8, 8)
    assert model.translate(x, "a2b").shape == model.translate(x, "b2a").shape == (2, 1, 8, 8)
    with pytest.raises(DataError, match="choose 'a2b'"):
        model.translate(x, "sideways")
    with pytest.raises(DataError, match=r"shape \[n, 1, 8, 8\]"):
        model.translate(torch.zeros(2, 3, 8, 8))
    assert registry.KINDS[model.spec["kind"]].tags == {"image", "translation"}
    with pytest.raises(CheckpointError, match="draws no images"):
        registry.load_sampler(full.path)
    from gankit.report import write_report

    page = write_report(full.path).read_text()
    assert "Translations" in page and "G(F(b))" in page and "data:image/png;base64" in page

    # files and the CLI
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8), "L").save(src / f"d{i}.png")
    written = translate_files(full.path, src, tmp_path / "out", "b2a")
    assert [p.name for p in written] == ["d0.png", "d1.png"]
    from gankit.cli import main

    assert (
        main(
            [
                "translate",
                str(full.path),
                "--in",
                str(src / "d0.png"),
                "--out",
                str(tmp_path / "one.png"),
            ]
        )
        == 0
    )
    assert Image.open(tmp_path / "one.png").size == (8, 8)
    assert (
        main(
            [
                "translate",
                str(full.path),
                "--in",
                str(tmp_path / "nope.png"),
                "--out",
                str(tmp_path / "x.png"),
            ]
        )
        == 2
    )


def test_config_errors():
    with pytest.raises(ConfigError, match=r"set data\.name = 'unpaired'"):
        from gankit.models.cyclegan import build

        build(load_config(None, ["model.family=cyclegan"]))
    with pytest.raises(ConfigError, match=r"model\.norm"):
        build(tiny("model.norm=layer"))
    with pytest.raises(ConfigError, match="multiple of 4"):
        build(tiny("data.image_size=10"))
    with pytest.raises(ConfigError, match=r"train\.ema must be 0"):
        build(tiny("train.ema=0.9"))


def test_bench_scoring_rewards_a_perfect_translator_only():
    from gankit.bench.cyclegan import MIRROR, score
    from gankit.data.unpaired import mirror

    class Perfect:  # the true domain change both ways (a mirror is its own inverse)
        def translate(self, x, direction):
            return mirror(x)

    class Blank:
        def translate(self, x, direction):
            return torch.full_like(x, -1.0)

    class AlwaysB:  # a stub domain classifier: every image is "B"
        def predict(self, x):
            return np.ones(len(x), dtype=int)

    good, bad = score(Perfect(), MIRROR, 0, AlwaysB()), score(Blank(), MIRROR, 0, AlwaysB())
    assert good["a2b_digit"] == good["real_digit_a"] > 0.99  # the classifier's own rate
    assert good["b2a_digit"] == good["real_digit_b"] > 0.99
    assert good["cycle_l1_a"] == 0.0 and bad["cycle_l1_a"] > 0.5
    assert bad["a2b_digit"] < 0.3 and bad["b2a_digit"] < 0.3
    assert good["a2b_domain"] == 1.0 and good["b2a_domain"] == 0.0  # from the stub's verdicts
