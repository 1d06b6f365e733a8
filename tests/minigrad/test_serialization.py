"""Weights as safetensors with a JSON config: round trip, atomicity, errors, no pickle."""

import numpy as np
import pytest

import minigrad
from minigrad import nn


def test_save_and_load_round_trip(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.LayerNorm(4))
    path = tmp_path / "model.safetensors"
    minigrad.save(model, path, config={"d_model": 4, "layers": [3, 4]})
    state, config = minigrad.load(path)
    assert config == {"d_model": 4, "layers": [3, 4]}
    assert set(state) == set(model.state_dict())
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(state[name], value)
        assert state[name].dtype == value.dtype
    fresh = nn.Sequential(nn.Linear(3, 4, rng=1), nn.LayerNorm(4))
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh[0].weight.data, model[0].weight.data)


def test_the_file_is_plain_safetensors_not_pickle(tmp_path):
    path = tmp_path / "w.safetensors"
    minigrad.save({"a": np.arange(4, dtype=np.float32)}, path)
    payload = path.read_bytes()
    header_size = int.from_bytes(payload[:8], "little")
    assert payload[8:9] == b"{" and b'"a"' in payload[8 : 8 + header_size]
    assert b"\x80\x04" not in payload[:2]  # no pickle protocol marker


def test_an_interrupted_save_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    minigrad.save({"a": np.zeros(2)}, path, config={"version": 1})

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr("minigrad.serialization.os.replace", crash)
    with pytest.raises(OSError, match="disk full"):
        minigrad.save({"a": np.ones(2)}, path, config={"version": 2})
    state, config = minigrad.load(path)
    assert config == {"version": 1} and np.all(state["a"] == 0)
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


def test_loading_a_missing_or_broken_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        minigrad.load(tmp_path / "nothing.safetensors")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(ValueError, match="broken.safetensors"):
        minigrad.load(broken)
