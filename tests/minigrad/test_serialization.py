"""Weights as safetensors with a JSON config: round trip, atomicity, errors, no pickle."""

import os
import stat

import numpy as np
import pytest
from safetensors.numpy import save as safetensors_save

import minigrad
from minigrad import Tensor, nn


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


def test_load_keeps_every_dtype_and_value_exactly(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "float64": rng.standard_normal((2, 3)),  # float64 for gradient checks
        "float32": rng.standard_normal(4).astype(np.float32),
        "int64": np.array([2**40, -3, 7], dtype=np.int64),  # beyond int32 and float32
        "int32": np.arange(3, dtype=np.int32),
        "bool": np.array([True, False]),
    }
    path = tmp_path / "w.safetensors"
    minigrad.save(arrays, path)
    state, _ = minigrad.load(path)
    for name, value in arrays.items():
        assert state[name].dtype == value.dtype, name
        np.testing.assert_array_equal(state[name], value)
    model = nn.Linear(3, 2, rng=0, dtype=np.float64)
    minigrad.save(model, path)
    assert all(v.dtype == np.float64 for v in minigrad.load(path)[0].values())


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


def test_a_new_file_gets_the_mode_of_a_plain_open_and_a_replaced_file_keeps_its_mode(tmp_path):
    new, existing = tmp_path / "new.safetensors", tmp_path / "existing.safetensors"
    existing.write_bytes(b"old")
    existing.chmod(0o640)
    old_umask = os.umask(0o022)
    try:
        minigrad.save({"a": np.zeros(2)}, new)
        minigrad.save({"a": np.zeros(2)}, existing)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o644
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640


def test_the_rename_is_flushed_to_the_directory_where_the_os_allows(tmp_path, monkeypatch):
    synced_directories = []
    real_fsync, real_open = os.fsync, os.open

    def recording_fsync(fd):
        synced_directories.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr("minigrad.serialization.os.fsync", recording_fsync)
    minigrad.save({"a": np.zeros(2)}, tmp_path / "w.safetensors")
    assert synced_directories == [False, True]  # the file, then its directory

    def open_refusing_directories(path, *args):
        if os.path.isdir(path):
            raise PermissionError("directories cannot be opened here")
        return real_open(path, *args)

    monkeypatch.setattr("minigrad.serialization.os.open", open_refusing_directories)
    minigrad.save({"a": np.ones(2)}, tmp_path / "w.safetensors")
    np.testing.assert_array_equal(minigrad.load(tmp_path / "w.safetensors")[0]["a"], 1.0)


def test_tensors_are_saved_as_their_arrays_and_zero_dim_arrays_keep_their_shape(tmp_path):
    path = tmp_path / "w.safetensors"
    minigrad.save({"w": Tensor(np.arange(3, dtype=np.float32)), "scale": np.array(2.0)}, path)
    state, _ = minigrad.load(path)
    np.testing.assert_array_equal(state["w"], [0, 1, 2])
    assert state["w"].dtype == np.float32 and state["scale"].shape == ()


@pytest.mark.parametrize(
    "value, message",
    [([1.0, 2.0], "'bad': a list, not an array or Tensor"),
     (np.array([object()]), "'bad': safetensors has no dtype object"),
     (np.zeros(2, np.complex128), "'bad': safetensors has no dtype complex128")],
)  # fmt: skip
def test_values_safetensors_cannot_store_are_named(tmp_path, value, message):
    with pytest.raises(TypeError, match=message):
        minigrad.save({"good": np.zeros(2), "bad": value}, tmp_path / "w.safetensors")
    assert not (tmp_path / "w.safetensors").exists()


def test_a_config_with_nan_is_refused_rather_than_written_as_nonstandard_json(tmp_path):
    with pytest.raises(ValueError, match="standard JSON.*Out of range float"):
        minigrad.save({"a": np.zeros(2)}, tmp_path / "w.safetensors", config={"lr": float("nan")})
    assert not (tmp_path / "w.safetensors").exists()


def test_a_config_that_is_not_a_json_object_names_the_file(tmp_path):
    path = tmp_path / "list_config.safetensors"
    path.write_bytes(safetensors_save({"a": np.zeros(2)}, metadata={"config": "[1, 2]"}))
    with pytest.raises(ValueError, match="list_config.safetensors.*JSON object, got list"):
        minigrad.load(path)
