import torch
from torch import nn

from gankit.data.source import BatchSampler
from gankit.engine import train
from gankit.engine.ema import EMA


def test_batch_sampler_is_a_function_of_the_counter():
    a, b = BatchSampler(100, 32, seed=3), BatchSampler(100, 32, seed=3)
    first = [a.indices(c) for c in range(7)]
    assert torch.equal(b.indices(5), first[5])  # random access, as after a resume
    epoch = torch.cat(first[:3])
    assert len(set(epoch.tolist())) == 96  # no repeats inside an epoch


def test_ema_tracks_average():
    live = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        live.weight.fill_(0.0)
    ema = EMA(live, decay=0.5)
    with torch.no_grad():
        live.weight.fill_(1.0)
    ema.update(live)
    ema.update(live)
    assert torch.allclose(ema.shadow.weight, torch.tensor([[0.75]]))
    assert not ema.shadow.weight.requires_grad


def test_tensorboard_events_written(tmp_path, toy_config):
    run = train(toy_config("train.tensorboard=true"), tmp_path / "tb")
    assert list((run.path / "tensorboard").glob("events.out.tfevents.*"))


def test_gradient_clipping_bounds_the_update(tmp_path, toy_config):
    from gankit.engine.runs import build_trainer

    trainer = build_trainer(
        toy_config("train.grad_clip=1e-3", "train.optimizer=sgd", "train.lr_d=1.0"), tmp_path / "gc"
    )
    d = trainer.model.networks["d"]
    before = [p.detach().clone() for p in d.parameters()]
    trainer.run_step()
    moved = torch.cat(
        [(p.detach() - b).flatten() for p, b in zip(d.parameters(), before, strict=True)]
    )
    # SGD moves by lr·g with ‖g‖ ≤ 1e-3 after clipping
    assert 1e-4 < moved.norm() <= 1e-3 * 1.01


def test_load_generator_refuses_other_kinds(tmp_path):
    import pytest

    import gankit
    from gankit.errors import CheckpointError
    from gankit.modeldir import write_model_dir

    write_model_dir(tmp_path, {"w": torch.ones(1)}, {"kind": "imputer"})
    with pytest.raises(CheckpointError, match="expected image-generator or toy-generator"):
        gankit.load_generator(tmp_path)


def test_saved_model_is_the_ema_of_the_trained_generator(tmp_path, toy_config):
    from safetensors.torch import load_file

    from gankit.engine.checkpoint import load_state

    run = train(toy_config("train.ema=0.5"), tmp_path / "ema")
    saved, state = load_file(run.path / "model.safetensors"), load_state(run.path)
    g_keys = [k for k in saved if not k.startswith("discriminator.")]
    ema, g, d = state["callbacks"]["ema:g"], state["networks"]["g"], state["networks"]["d"]
    assert set(g_keys) == set(ema)
    assert all(torch.equal(saved[k], ema[k]) for k in g_keys)
    assert any(not torch.equal(saved[k], g[k]) for k in g_keys)
    # the discriminator is saved beside it, for rejection sampling
    d_keys = {k.removeprefix("discriminator."): k for k in saved if k not in g_keys}
    assert d_keys.keys() == d.keys()
    assert all(torch.equal(saved[d_keys[k]], d[k]) for k in d_keys)
