"""Modules: registration, state dicts, modes, and a gradient check of every layer."""

import numpy as np
import pytest

from minigrad import Tensor, gradcheck, nn, random_tensors


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(3, 4, rng=0)
        self.norm = nn.LayerNorm(4)
        self.blocks = nn.ModuleList([nn.Linear(4, 4, rng=1), nn.Linear(4, 2, bias=False, rng=2)])
        self.register_buffer("scale", np.full(2, 3.0))

    def forward(self, x):
        h = self.norm(self.first(x)).relu()
        for block in self.blocks:
            h = block(h)
        return h * Tensor(self.scale)


def test_parameters_are_found_by_name_in_registration_order():
    model = TwoLayer()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["first.weight", "first.bias", "norm.weight", "norm.bias",
                     "blocks.0.weight", "blocks.0.bias", "blocks.1.weight"]  # fmt: skip
    assert model.num_parameters() == 3 * 4 + 4 + 4 + 4 + 16 + 4 + 8
    assert list(model.state_dict()) == ["scale", *names]  # a module's own entries first


def test_a_shared_parameter_is_listed_once():
    model = nn.Module()
    model.embed = nn.Embedding(5, 3)
    model.head = nn.Linear(3, 5, bias=False)
    model.head.weight = model.embed.weight
    assert len(list(model.parameters())) == 1
    assert set(model.state_dict()) == {"embed.weight", "head.weight"}


def test_state_dict_round_trip_restores_the_outputs():
    model, other = TwoLayer(), TwoLayer()
    for p in other.parameters():
        p.data += 1.0
    x = Tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    assert not np.allclose(model(x).data, other(x).data)
    other.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(model(x).data, other(x).data)


def test_load_state_dict_names_wrong_shapes_and_missing_or_unexpected_keys():
    model = TwoLayer()
    state = model.state_dict()
    bad_shape = {**state, "first.weight": np.zeros((5, 3))}
    with pytest.raises(ValueError, match=r"'first.weight'.*\(5, 3\).*\(4, 3\)"):
        model.load_state_dict(bad_shape)
    missing = {k: v for k, v in state.items() if k != "norm.bias"}
    with pytest.raises(ValueError, match=r"missing keys \['norm.bias'\]"):
        model.load_state_dict(missing)
    with pytest.raises(ValueError, match=r"unexpected keys \['extra'\]"):
        model.load_state_dict({**state, "extra": np.zeros(1)})
    assert model.load_state_dict(missing, strict=False) == (["norm.bias"], [])


def test_train_eval_and_zero_grad_reach_every_submodule():
    model = TwoLayer()
    model.eval()
    assert all(not m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model(Tensor(np.ones((2, 3), np.float32))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_forgetting_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Broken()


def test_linear_rejects_the_wrong_input_width():
    layer = nn.Linear(3, 4)
    with pytest.raises(ValueError, match=r"Linear\(3, 4\).*\(2, 5\).*\(4, 3\)"):
        layer(Tensor(np.ones((2, 5), np.float32)))


def test_layers_default_to_float32_and_initialize_like_pytorch():
    layer = nn.Linear(16, 8, rng=0)
    assert layer.weight.dtype == np.float32 and layer.weight.shape == (8, 16)
    assert np.abs(layer.weight.data).max() <= 1 / 4
    assert nn.Linear(16, 8, rng=0).weight.data.tolist() == layer.weight.data.tolist()
    assert nn.Linear(16, 8, rng=1).weight.data.tolist() != layer.weight.data.tolist()
    norm = nn.LayerNorm(4)
    np.testing.assert_array_equal(norm.weight.data, np.ones(4, np.float32))


def test_every_layer_passes_gradcheck_in_float64():
    model = TwoLayer().to(np.float64)
    (x,) = random_tensors((2, 3), seed=1)
    params = list(model.parameters())

    def run(x, *weights):
        return model(x)

    assert gradcheck(run, x, *params)


def test_embedding_and_dropout_modules():
    embed = nn.Embedding(6, 3, rng=0).to(np.float64)
    ids = np.array([[1, 5], [5, 0]])
    assert embed(ids).shape == (2, 2, 3)
    assert gradcheck(lambda w: embed(ids), embed.weight)
    with pytest.raises(IndexError, match=r"\[0, 6\)"):
        embed(np.array([6]))
    drop = nn.Dropout(0.5, rng=0)
    x = Tensor(np.ones((4, 4)))
    assert np.any(drop(x).data == 0)
    drop.eval()
    assert drop(x) is x
    with pytest.raises(ValueError, match="1.0"):
        nn.Dropout(1.0)


def test_sequential_and_activation_modules():
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.GELU(), nn.Linear(3, 3, rng=1), nn.Tanh(),
                          nn.Linear(3, 1, rng=2), nn.Sigmoid()).to(np.float64)  # fmt: skip
    (x,) = random_tensors((4, 2), seed=2)
    assert model(x).shape == (4, 1) and len(model) == 6
    assert isinstance(model[1], nn.GELU)
    assert gradcheck(lambda x, *w: model(x), x, *model.parameters())
    assert "Linear(2, 3, bias=True)" in repr(model)


def test_a_parameter_owns_its_data():
    source = np.ones(3)
    p = nn.Parameter(source)
    p.data -= 1
    np.testing.assert_array_equal(source, np.ones(3))


def test_a_buffer_registered_again_takes_the_new_persistence():
    module = nn.Module()
    module.register_buffer("table", np.zeros(2), persistent=False)
    assert "table" not in module.state_dict()
    module.register_buffer("table", np.ones(2))
    np.testing.assert_array_equal(module.state_dict()["table"], np.ones(2))
