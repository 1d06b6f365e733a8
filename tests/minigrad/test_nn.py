"""Modules: registration, state dicts, modes, and a gradient check of every layer."""

from collections import OrderedDict

import numpy as np
import pytest

from minigrad import GradcheckError, Tensor, gradcheck, nn, random_tensors
from minigrad import functional as F


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


def test_load_state_dict_writes_a_persistent_buffer_into_the_module_and_skips_the_others():
    model = TwoLayer()
    model.register_buffer("cache", np.zeros(2), persistent=False)
    state = {**model.state_dict(), "scale": np.array([5.0, -1.0])}
    assert "cache" not in state
    x = Tensor(np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32))
    before = model(x).data
    model.load_state_dict(state)
    np.testing.assert_array_equal(model.scale, [5.0, -1.0])
    np.testing.assert_array_equal(model.state_dict()["scale"], [5.0, -1.0])
    np.testing.assert_allclose(model(x).data, before / 3.0 * np.array([5.0, -1.0]), rtol=1e-6)
    with pytest.raises(ValueError, match=r"unexpected keys \['cache'\]"):
        model.load_state_dict({**state, "cache": np.ones(2)})


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
    assert gradcheck(lambda x, *params: model(x), x, *model.parameters())


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


def test_containers_reject_what_is_not_a_module():
    with pytest.raises(TypeError, match="function is not a Module subclass"):
        nn.Sequential(nn.Linear(2, 2), lambda x: x * 100)
    with pytest.raises(TypeError, match="int is not a Module subclass"):
        nn.ModuleList([nn.Linear(2, 2), 3])
    layers = nn.ModuleList([nn.ReLU()])
    for add in (layers.append, lambda m: layers.extend([m]), lambda m: layers.insert(0, m),
                lambda m: layers.__setitem__(0, m)):  # fmt: skip
        with pytest.raises(TypeError, match="ndarray is not a Module subclass"):
            add(np.zeros(2))
    assert len(layers) == 1 and isinstance(layers[0], nn.ReLU)


def test_sequential_from_an_ordered_dict_keeps_the_names():
    model = nn.Sequential(OrderedDict(proj=nn.Linear(2, 3, rng=0), act=nn.ReLU()))
    assert len(model) == 2 and model.proj is model[0]
    assert list(model.state_dict()) == ["proj.weight", "proj.bias"]
    assert model(Tensor(np.ones((1, 2), np.float32))).shape == (1, 3)
    with pytest.raises(ValueError, match="'forward'"):
        nn.Sequential(OrderedDict(forward=nn.ReLU()))


def test_reassigning_a_parameter_keeps_its_place_in_the_state_dict():
    model = nn.Module()
    model.embed = nn.Embedding(5, 3)
    model.head = nn.Linear(3, 5)
    model.head.weight = model.embed.weight
    assert list(model.state_dict()) == ["embed.weight", "head.weight", "head.bias"]
    layer = nn.Linear(2, 2)
    layer.weight = nn.Parameter(np.zeros((2, 2), np.float32))
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]


def test_assigning_an_array_to_a_buffer_keeps_it_a_buffer():
    module = nn.Module()
    module.register_buffer("mask", np.zeros(2))
    module.mask = np.ones(2)
    np.testing.assert_array_equal(module.state_dict()["mask"], np.ones(2))


def test_assigning_the_wrong_kind_over_a_registered_name_is_a_type_error():
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"'numpy.ndarray' as parameter 'weight'"):
        layer.weight = np.zeros((2, 2))
    assert isinstance(layer.weight, nn.Parameter) and "weight" in layer.state_dict()
    model = nn.Module()
    model.layer = layer
    with pytest.raises(TypeError, match=r"'int' as child module 'layer'"):
        model.layer = 3
    model.register_buffer("mask", np.zeros(2))
    with pytest.raises(TypeError, match=r"'list' as buffer 'mask'"):
        model.mask = [1, 1]
    assert list(model.state_dict()) == ["mask", "layer.weight", "layer.bias"]
    layer.bias = None
    assert list(layer.state_dict()) == ["weight"]


def test_load_state_dict_names_every_problem_and_changes_nothing():
    model = TwoLayer()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    state = {k: v + 1 for k, v in before.items() if k != "norm.bias"}
    state |= {"first.weight": np.zeros((5, 3)), "first.bias": np.zeros(2), "extra": np.zeros(1)}
    pattern = (r"missing keys \['norm.bias'\].*unexpected keys \['extra'\]"
               r".*'first.weight'.*\(5, 3\).*\(4, 3\).*'first.bias'.*\(2,\).*\(4,\)")  # fmt: skip
    with pytest.raises(ValueError, match=pattern):
        model.load_state_dict(state)
    with pytest.raises(ValueError, match=r"'first.weight'.*'first.bias'"):
        model.load_state_dict(state, strict=False)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_a_shared_submodule_is_listed_once():
    model = nn.Module()
    model.a = nn.Linear(2, 2)
    model.b = model.a
    assert [name for name, _ in model.named_modules()] == ["", "a"]
    assert len(list(model.modules())) == 2 and len(list(model.children())) == 1
    assert list(model.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]


def test_slicing_keeps_the_container_type():
    layers = nn.ModuleList([nn.ReLU(), nn.Tanh(), nn.GELU()])
    head = layers[0:2]
    assert isinstance(head, nn.ModuleList) and [type(m) for m in head] == [nn.ReLU, nn.Tanh]
    model = nn.Sequential(OrderedDict(proj=nn.Linear(2, 3), act=nn.ReLU(), out=nn.Linear(3, 1)))
    tail = model[1:]
    assert isinstance(tail, nn.Sequential) and list(tail.state_dict()) == ["out.weight", "out.bias"]
    with pytest.raises(ValueError, match=r"'2' is already taken"):
        nn.Sequential(nn.ReLU(), nn.Tanh(), nn.GELU())[1:].append(nn.ReLU())


def test_module_list_extend_insert_and_setitem():
    relu, tanh, gelu, sigmoid = nn.ReLU(), nn.Tanh(), nn.GELU(), nn.Sigmoid()
    layers = nn.ModuleList([relu]).extend([tanh])
    layers.insert(1, gelu)
    layers.insert(-1, sigmoid)
    assert list(layers) == [relu, gelu, sigmoid, tanh]
    assert layers[3] is tanh and getattr(layers, "3") is tanh
    layers[-1] = linear = nn.Linear(2, 2)
    assert list(layers.state_dict()) == ["3.weight", "3.bias"] and layers[3] is linear
    named = nn.Sequential(OrderedDict(act=nn.ReLU()))
    with pytest.raises(ValueError, match=r"\['act'\]"):
        named.insert(0, nn.Tanh())


def test_layer_norm_takes_a_one_axis_normalized_shape():
    x = Tensor(np.ones((2, 4), np.float32))
    assert nn.LayerNorm((4,))(x).shape == (2, 4) and nn.LayerNorm([4])(x).shape == (2, 4)
    with pytest.raises(ValueError, match=r"last axis.*\(3, 4\)"):
        nn.LayerNorm((3, 4))


def test_layers_name_the_shape_of_a_0d_input():
    scalar = Tensor(np.float32(1.0))
    with pytest.raises(ValueError, match=r"Linear\(2, 3\).*shape \(\)"):
        nn.Linear(2, 3)(scalar)
    with pytest.raises(ValueError, match=r"LayerNorm\(4\).*shape \(\)"):
        nn.LayerNorm(4)(scalar)


def test_deleting_an_attribute_unregisters_it():
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.Linear(3, 1, rng=1))
    del model[0].bias
    layer = model[1]
    layer.register_buffer("scale", np.ones(1))
    del layer.scale
    assert list(model.state_dict()) == ["0.weight", "1.weight", "1.bias"]
    assert len(list(model.parameters())) == 3


def test_a_module_gradcheck_catches_a_wrong_weight_gradient(monkeypatch):
    layer = nn.Linear(3, 2, rng=0).to(np.float64)
    (x,) = random_tensors((4, 3), seed=5)

    def run(x, *params):
        return layer(x)

    assert gradcheck(run, x, *layer.parameters())
    backward = F.Linear.backward

    def doubled_weight_gradient(ctx, grad):
        gx, gw, *gb = backward(ctx, grad)
        return (gx, 2 * gw, *gb)

    monkeypatch.setattr(F.Linear, "backward", staticmethod(doubled_weight_gradient))
    with pytest.raises(GradcheckError, match="input 1"):
        gradcheck(run, x, *layer.parameters())
