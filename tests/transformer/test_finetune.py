"""Fine-tuning: LoRA, freezing, the classifier, instruction tuning, and `finetune` on the
command line."""

import numpy as np
import pytest
from cli_helpers import bad, run

import minigrad as mg
from minigrad import optim
from minigrad.nn import Linear
from tokenizers import CharTokenizer
from transformer.__main__ import main
from transformer.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from transformer.data import load_corpus
from transformer.finetune import (
    END_TOKEN,
    BagOfWords,
    GPTClassifier,
    InstructGPT,
    InstructionTask,
    LoRAConfig,
    LoRALinear,
    SectionTask,
    _rows_times,
    _transpose_times,
    apply_lora,
    collate_rows,
    encoder_classifier,
    format_prompt,
    load_adapters,
    merge_lora,
    respond,
    save_adapters,
    section_examples,
    window,
)
from transformer.generation import generate
from transformer.models import (
    GPT,
    IGNORE_INDEX,
    EncoderConfig,
    EncoderDecoder,
    EncoderDecoderConfig,
    EncoderModel,
    GPTConfig,
)
from transformer.train import TrainConfig, Trainer, read_metrics

SMALL = GPTConfig(vocab_size=24, block_size=16, n_layer=2, n_head=2, n_embd=16)


def small_gpt(dtype=np.float32, **changes):
    config = GPTConfig(**{**SMALL.to_dict(), **changes})
    return GPT(config, rng=0, dtype=dtype)


def ids(B=3, T=10, vocab=24, seed=1):
    return np.random.default_rng(seed).integers(0, vocab, (B, T))


def randomize_adapters(model, seed=2):
    """What training does to B (it starts at zero)."""
    rng = np.random.default_rng(seed)
    for name, p in model.named_parameters():
        if name.endswith("lora_B"):
            p.data[...] = rng.normal(0, 0.5, p.shape)


@pytest.fixture(scope="module")
def char_tokenizer():
    return CharTokenizer().train(load_corpus())


# ------------------------------------------------------------------ LoRA
def test_lora_linear_gradient_check():
    layer = LoRALinear(Linear(6, 5, rng=0, dtype=np.float64), rank=3, alpha=6.0, rng=1)
    layer.lora_B.data[...] = np.random.default_rng(2).normal(size=layer.lora_B.shape)
    (x,) = mg.random_tensors((2, 4, 6), seed=3)
    assert mg.gradcheck(lambda x, A, B: layer(x), x, layer.lora_A, layer.lora_B)


def test_lora_linear_is_its_definition():
    base = Linear(6, 5, rng=0, dtype=np.float64)
    layer = LoRALinear(base, rank=2, alpha=3.0, rng=1)
    layer.lora_B.data[...] = np.random.default_rng(2).normal(size=(5, 2))
    x = np.random.default_rng(3).normal(size=(4, 6))
    W, b, A, B = base.weight.data, base.bias.data, layer.lora_A.data, layer.lora_B.data
    expected = x @ W.T + b + (3.0 / 2) * (x @ A.T) @ B.T
    np.testing.assert_allclose(layer(mg.Tensor(x)).data, expected, rtol=1e-12)
    assert layer.weight is base.weight and not layer.weight.requires_grad
    assert A.shape == (2, 6) and B.shape == (5, 2) and np.abs(A).max() <= 1 / np.sqrt(6)


def test_zero_initialised_B_gives_exactly_the_base_models_outputs():
    base, adapted = small_gpt(), small_gpt()
    names = apply_lora(adapted, LoRAConfig(rank=4), rng=0)
    assert len(names) == 8 and "blocks.1.ffn.down" in names
    x = ids()
    np.testing.assert_array_equal(adapted(x)[0].data, base(x)[0].data)


def test_merge_gives_the_unmerged_outputs_with_plain_linears():
    model = small_gpt(dtype=np.float64)
    apply_lora(model, LoRAConfig(rank=3, alpha=5.0), rng=0)
    randomize_adapters(model)
    x = ids()
    unmerged = model(x)[0].data
    assert np.abs(unmerged - small_gpt(dtype=np.float64)(x)[0].data).max() > 1e-2
    merge_lora(model)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert not any("lora" in name for name in model.state_dict())
    np.testing.assert_allclose(model(x)[0].data, unmerged, rtol=1e-10, atol=1e-12)


def test_only_A_and_B_receive_gradients_and_change():
    model = small_gpt()
    apply_lora(model, LoRAConfig(rank=2, targets=("qkv", "down")), rng=0)
    for p in model.parameters():
        p.requires_grad = p in {q for n, q in model.named_parameters() if "lora_" in n}
    before = {n: p.data.copy() for n, p in model.named_parameters()}
    opt = optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        model(ids(), ids(seed=5))[1].backward()
        opt.step()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad == {n for n in before if n.endswith(("lora_A", "lora_B"))}
    assert len(with_grad) == 2 * 2 * 2  # two layers kinds, two blocks, A and B
    for name, p in model.named_parameters():
        assert np.array_equal(p.data, before[name]) == (name not in with_grad), name


def test_a_rank_larger_than_the_layer_is_refused_before_any_change():
    with pytest.raises(ValueError, match=r"rank 5 does not fit a Linear\(4, 8\)"):
        LoRALinear(Linear(4, 8), rank=5, alpha=1.0)
    model = small_gpt(ffn_hidden=8)
    with pytest.raises(ValueError, match=r"rank 12 is larger than the width of blocks.0.ffn.up"):
        apply_lora(model, LoRAConfig(rank=12), rng=0)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    with pytest.raises(ValueError, match="larger than the width of the 'up' layers"):
        GPTClassifier.from_gpt(model, 2, lora=LoRAConfig(rank=12))
    with pytest.raises(ValueError, match="lora targets must be distinct names from"):
        LoRAConfig(targets=("qkv", "proj"))


def test_adapters_are_saved_and_loaded_on_their_own(tmp_path):
    gpt = small_gpt()
    model = GPTClassifier.from_gpt(gpt, 3, lora=LoRAConfig(rank=2), rng=0)
    randomize_adapters(model)
    model.head.weight.data += 1
    save_adapters(model, tmp_path / "adapters.safetensors")
    arrays, config = mg.load(tmp_path / "adapters.safetensors")
    assert set(arrays) == {n for n, p in model.named_parameters() if p.requires_grad}
    assert {n.rsplit(".", 1)[-1] for n in arrays} == {"lora_A", "lora_B", "weight", "bias"}
    assert config["lora"]["rank"] == 2
    fresh = GPTClassifier.from_gpt(gpt, 3, lora=LoRAConfig(rank=2), rng=7)
    load_adapters(fresh, tmp_path / "adapters.safetensors")
    x = ids()
    np.testing.assert_array_equal(fresh(x)[0].data, model(x)[0].data)
    other = GPTClassifier.from_gpt(gpt, 3, lora=LoRAConfig(rank=2, targets=("qkv",)), rng=0)
    with pytest.raises(ValueError, match="does not fit this model: missing"):
        load_adapters(other, tmp_path / "adapters.safetensors")


# ------------------------------------------------------------------ what trains
@pytest.mark.parametrize("blocks", [None, 0, 1, 2])
def test_trainable_blocks_chooses_the_last_blocks_final_norm_and_head(blocks):
    model = GPTClassifier.from_gpt(small_gpt(), 2, trainable_blocks=blocks)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    names = [n for n, _ in model.named_parameters()]
    if blocks is None:
        assert trained == set(names)
        return
    expected = {n for n in names if n.startswith("head.")}
    if blocks:
        last = [f"gpt.blocks.{i}." for i in range(2 - blocks, 2)]
        expected |= {n for n in names if n.startswith((*last, "gpt.ln_final."))}
    assert trained == expected


# ------------------------------------------------------------------ classification
def test_last_token_pooling_ignores_right_padding_and_mean_pools_real_tokens():
    gpt = small_gpt()
    rows = [[3, 4, 5, 6, 7], [8, 9], [10, 11, 12]]
    padded = np.zeros((3, 5), dtype=np.int64)
    mask = np.zeros((3, 5), dtype=bool)
    for b, row in enumerate(rows):
        padded[b, : len(row)], mask[b, : len(row)] = row, True
    for pooling in ("last", "mean"):
        model = GPTClassifier.from_gpt(gpt, 3, pooling=pooling, rng=0)
        batched = model(padded, attention_mask=mask)[0].data
        one_by_one = np.concatenate([model(np.array([r]))[0].data for r in rows])
        np.testing.assert_allclose(batched, one_by_one, rtol=1e-5, atol=1e-6)
    hidden = gpt.hidden_states(padded).data
    model = GPTClassifier.from_gpt(gpt, 3, pooling="last", rng=0)
    head = model.head.weight.data
    np.testing.assert_allclose(model(padded, attention_mask=mask)[0].data[1],
                               hidden[1, 1] @ head.T, rtol=1e-5)  # fmt: skip
    with pytest.raises(ValueError, match="right padding"):
        model(padded, attention_mask=mask[:, ::-1])


def test_the_section_task_has_no_passage_in_both_splits_and_balanced_evaluation(char_tokenizer):
    examples = section_examples(64)
    train, val = {t for t, _ in examples["train"]}, {t for t, _ in examples["val"]}
    assert len(train) > 2000 and len(val) > 400 and not train & val
    assert all(len(t) <= 64 for t in train | val)
    task = SectionTask(char_tokenizer, 64)
    counts = np.bincount(task.targets["val"][task.balanced()], minlength=4)
    assert (counts == counts[0]).all() and counts[0] > 50
    ids, real, labels = task.batch("train", 6, np.random.default_rng(0))
    assert ids.shape[0] == 6 and ids.shape[1] <= 64 and labels.shape == (6,)
    assert (ids[~real] == 0).all()  # right padding: each row's real tokens are a prefix
    assert (real == (np.arange(ids.shape[1]) < real.sum(axis=1, keepdims=True))).all()


def quick_run(model, task, steps, batch_size, lr):
    config = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, warmup_steps=2,
                         eval_interval=steps, eval_batches=1)  # fmt: skip
    Trainer(model, task, config, progress=False).run()


def test_a_short_classification_finetune_beats_chance_on_held_out_passages(char_tokenizer):
    config = GPTConfig(vocab_size=char_tokenizer.vocab_size, block_size=32, n_layer=1,
                       n_head=2, n_embd=32)  # fmt: skip
    model = GPTClassifier.from_gpt(GPT(config, rng=0), SectionTask.n_classes, pooling="mean")
    task = SectionTask(char_tokenizer, 32)
    n = len(task.balanced())
    assert n > 900 and abs(task.accuracy(model) - 0.25) < 0.05
    quick_run(model, task, steps=60, batch_size=32, lr=3e-3)
    # chance is 1/4 on balanced classes; its standard error on n passages is about 0.014
    assert task.accuracy(model) > 0.25 + 3 * np.sqrt(0.25 * 0.75 / n)


def test_the_bag_of_words_baseline_learns_the_sections(char_tokenizer):
    assert SectionTask(char_tokenizer, 64).baseline_accuracy() > 0.5


def test_the_sparse_products_of_the_baseline_are_the_dense_ones():
    texts = ["the cat sat on the mat", "a dog", "", "the the the dog"]
    model = BagOfWords(2, steps=1).fit(texts, np.array([0, 1, 0, 1]))
    x = model.features(texts)
    rows, cols, vals, n = x
    dense = np.zeros((n, len(model.vocabulary)))
    dense[rows, cols] = vals
    np.testing.assert_allclose(np.linalg.norm(dense, axis=1), [1, 1, 0, 1])  # unit length
    W = np.random.default_rng(0).normal(size=(len(model.vocabulary), 3))
    G = np.random.default_rng(1).normal(size=(n, 3))
    np.testing.assert_allclose(_rows_times(x, W), dense @ W, rtol=1e-12)
    np.testing.assert_allclose(_transpose_times(x, G, len(W)), dense.T @ G, rtol=1e-12)


def test_encoder_classifier_copies_the_body_and_adds_a_head():
    encoder = EncoderModel(EncoderConfig(vocab_size=24, block_size=16, n_layer=2, n_head=2,
                                         n_embd=16, dropout=0.0), rng=0)  # fmt: skip
    model = encoder_classifier(encoder, 3, pooling="cls", trainable_blocks=0, rng=1)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        "classifier.weight", "classifier.bias"}  # fmt: skip
    x = ids(seed=4)
    np.testing.assert_array_equal(model.hidden_states(x).data, encoder.hidden_states(x).data)
    logits = model(x)[0].data
    pooled = encoder.hidden_states(x).data[:, 0]  # [CLS]: the first position
    np.testing.assert_allclose(logits, pooled @ model.classifier.weight.data.T
                               + model.classifier.bias.data, rtol=1e-5)  # fmt: skip
    mean = encoder_classifier(encoder, 3, pooling="mean", rng=1)
    assert mean(x)[0].shape == (3, 3) and all(p.requires_grad for p in mean.parameters())


def test_the_encoder_reads_section_passages_after_its_cls_token_and_learns_them(char_tokenizer):
    V = char_tokenizer.vocab_size
    encoder = EncoderModel(EncoderConfig(vocab_size=V + 1, block_size=16, n_layer=1, n_head=2,
                                         n_embd=16, dropout=0.0), rng=0)  # fmt: skip
    model = encoder_classifier(encoder, SectionTask.n_classes, pooling="cls", rng=1)
    task = SectionTask(char_tokenizer, 16, cls_id=V)  # [CLS] is the id after the characters
    batch = task.batch("train", 8, np.random.default_rng(0))
    assert (batch[0][:, 0] == V).all() and batch[0].shape[1] <= 16
    opt = optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):  # one batch, learned by heart: the head and body train together
        opt.zero_grad()
        loss = task.loss(model, batch)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


# ------------------------------------------------------------------ instruction tuning
def test_a_window_predicts_its_last_token_from_the_context_generation_gives_it():
    sequence, n_prompt, T = np.arange(100, 141), 9, 8  # 41 tokens, the last 32 a response
    inputs, targets = window(sequence, n_prompt, T, end=30)
    np.testing.assert_array_equal(inputs, sequence[22:30])  # the T tokens before position 30
    np.testing.assert_array_equal(targets, sequence[23:31])
    inputs, targets = window(sequence, n_prompt, T, end=6)  # inside the prompt: nothing to learn
    assert list(inputs) == list(sequence[:6]) and (targets == IGNORE_INDEX).all()
    inputs, targets = window(sequence, n_prompt, T, end=12)
    assert list(targets) == [IGNORE_INDEX] * 4 + list(sequence[9:13])  # targets from position 9


def test_the_masked_loss_is_the_cross_entropy_of_the_response_tokens_only():
    model = small_gpt()
    pairs = [([1, 2, 3, 4], [5, 6, 7]), ([8, 9], [10, 11, 12, 13, 14])]  # (prompt, response)
    rows = [window(np.array(p + r), len(p), 16, len(p + r) - 1) for p, r in pairs]
    inputs, targets, _ = collate_rows(rows)
    logits, loss = model(inputs, targets)
    log_probs = logits.data - np.log(np.exp(logits.data).sum(axis=-1, keepdims=True))
    by_hand = []
    for b, (prompt, response) in enumerate(pairs):
        sequence = prompt + response
        for position in range(len(prompt), len(sequence)):  # the response tokens
            by_hand.append(-log_probs[b, position - 1, sequence[position]])
    assert len(by_hand) == 3 + 5
    assert loss.item() == pytest.approx(np.mean(by_hand), rel=1e-5)


def test_the_response_loss_predicts_each_token_as_generation_does(char_tokenizer):
    T = 16
    config = GPTConfig(vocab_size=char_tokenizer.vocab_size, block_size=T, n_layer=1,
                       n_head=2, n_embd=16)  # fmt: skip
    model, tokenizer = InstructGPT.from_gpt(GPT(config, rng=0), char_tokenizer)
    task = InstructionTask(tokenizer, model.end_id(tokenizer), T)
    task.sequences["val"] = task.sequences["val"][:2]
    losses = []
    for ids, n_prompt in task.sequences["val"]:
        assert len(ids) > 3 * T and ids[-1] == model.end_id(tokenizer)
        for p in range(n_prompt, len(ids)):  # a sliding window, as generation's
            logits = model(ids[None, max(0, p - T) : p])[0].data[0, -1]
            losses.append(
                np.log(np.exp(logits - logits.max()).sum()) + logits.max() - logits[ids[p]]
            )
    assert task.response_loss(model) == pytest.approx(np.mean(losses), rel=1e-5)
    inputs, targets, real = task.batch("train", 5, np.random.default_rng(0))
    assert inputs.shape == (5, T) and (targets[~real] == IGNORE_INDEX).all()


def test_the_end_token_is_added_to_a_copy_of_the_tokenizer_with_its_own_row():
    gpt = small_gpt(vocab_size=20)
    tokenizer = CharTokenizer().train("abcdefghijklmnopqrs")
    model, with_end = InstructGPT.from_gpt(gpt, tokenizer, lora=LoRAConfig(rank=2))
    assert END_TOKEN not in tokenizer.special_tokens and tokenizer.vocab_size == 20
    assert with_end.special_tokens[END_TOKEN] == 20 == model.end_id(with_end)
    assert model.config.vocab_size == 21 and model.config.added_tokens == 1
    table = model.token_embedding.weight.data
    np.testing.assert_array_equal(table[:20], gpt.token_embedding.weight.data)
    np.testing.assert_allclose(table[20], table[:20].mean(axis=0), rtol=1e-6)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "token_embedding.added" in trained and "token_embedding.base.weight" not in trained
    x = ids(vocab=20)
    np.testing.assert_allclose(model(x)[0].data[..., :20], gpt(x)[0].data, rtol=1e-6)
    # a row at the mean of the others can never have the largest logit: it must train
    h = np.random.default_rng(0).normal(size=(50, 16))
    assert ((h @ table[20]) <= (h @ table[:20].T).max(axis=1) + 1e-6).all()


def test_generation_stops_at_the_end_token():
    tokenizer = CharTokenizer().train("abcdefghijklmnopqrs")
    model, tokenizer = InstructGPT.from_gpt(small_gpt(vocab_size=20), tokenizer)
    end_id = model.end_id(tokenizer)
    written = generate(model, [1, 2, 3], 7, temperature=0, eos_id=end_id)
    assert len(written) == 7 and end_id not in written
    # make the end token the likeliest everywhere: a constant final state along its row
    row = np.random.default_rng(0).normal(size=16).astype(np.float32)
    model.token_embedding.added.data[0] = row
    model.ln_final.weight.data[...] = 0
    model.ln_final.bias.data[...] = 10 * row
    assert respond(model, tokenizer, end_id, "abc", max_new_tokens=7) == ""


def test_instruction_tuning_lowers_the_response_loss(char_tokenizer):
    config = GPTConfig(vocab_size=char_tokenizer.vocab_size, block_size=32, n_layer=1,
                       n_head=2, n_embd=32)  # fmt: skip
    model, tokenizer = InstructGPT.from_gpt(GPT(config, rng=0), char_tokenizer)
    task = InstructionTask(tokenizer, model.end_id(tokenizer), 32)
    assert len(task.pairs["train"]) > 60 and task.pairs["val"]
    assert not {p.topic for p in task.pairs["train"]} & {p.topic for p in task.pairs["val"]}
    before = task.response_loss(model)  # held out: topics never trained on
    quick_run(model, task, steps=25, batch_size=8, lr=1e-2)
    assert task.response_loss(model) < before - 0.5


@pytest.mark.parametrize("lora", [None, LoRAConfig(rank=2, targets=("qkv", "out"))])
def test_fine_tuned_models_go_through_checkpoints(tmp_path, lora):
    tokenizer = CharTokenizer().train("abcdefghijklmnopqrs")
    gpt = small_gpt(vocab_size=20)
    for name, model in [("cls", GPTClassifier.from_gpt(gpt, 2, lora=lora, labels=("a", "b"))),
                        ("ins", InstructGPT.from_gpt(gpt, tokenizer, lora=lora)[0])]:  # fmt: skip
        randomize_adapters(model)
        save_checkpoint(tmp_path / name, model, step=1)
        loaded = load_checkpoint(tmp_path / name).model
        assert type(loaded) is type(model) and loaded.config == model.config
        x = ids(vocab=20)
        np.testing.assert_array_equal(loaded(x)[0].data, model(x)[0].data)
        assert [p.requires_grad for p in loaded.parameters()] == [
            p.requires_grad for p in model.parameters()]  # fmt: skip


# ------------------------------------------------------------------ the command line
FAST = ["--no-progress", "--batch-size", "4", "--eval-batches", "1"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["train", "--preset", "tiny", "--no-progress", "--steps", "4",
                 "--max-new-tokens", "5", "--out", str(out)]) == 0  # fmt: skip
    return out


def test_finetune_classify_reports_accuracy_and_baseline_and_sample_labels(pretrained, tmp_path,
                                                                           capsys):  # fmt: skip
    out = tmp_path / "cls"
    status, stdout, _ = run(["finetune", "--checkpoint", str(pretrained), "--task", "classify",
                             "--out", str(out), "--steps", "3", *FAST], capsys)  # fmt: skip
    assert status == 0
    assert "GPTClassifier: 17,252 of 17,252 parameters train (100.0%)" in stdout
    assert "held-out accuracy" in stdout and "bag-of-words baseline" in stdout
    checkpoint = load_checkpoint(out)
    assert checkpoint.kind == "gpt_classifier" and checkpoint.step == 3
    status, stdout, _ = run(["sample", "--checkpoint", str(out), "--prompt", "x = 1"], capsys)
    assert status == 0 and "is a classifier" in stdout
    shares = [float(line.split("%")[0]) for line in stdout.splitlines()[1:]]
    assert len(shares) == 4 and sum(shares) == pytest.approx(100, abs=0.3)
    status, stdout, _ = run(["eval", "--checkpoint", str(out)], capsys)
    assert status == 0 and "held-out accuracy" in stdout


def test_finetune_instruct_with_lora_writes_adapters_and_answers_in_the_template(
    pretrained, tmp_path, capsys
):
    out = tmp_path / "ins"
    status, stdout, _ = run(["finetune", "--checkpoint", str(pretrained), "--task", "instruct",
                             "--lora-rank", "2", "--out", str(out), "--steps", "2", *FAST],
                            capsys)  # fmt: skip
    assert status == 0 and "(LoRA rank 2)" in stdout
    assert "--- before (sampled, temperature 0.7) ---\nInstruction: " in stdout
    assert "--- after (sampled" in stdout and "probability of the end token" in stdout
    assert (out / "adapters.safetensors").is_file()
    model = load_checkpoint(out).model
    assert model.config.lora.rank == 2 and model.config.lora.alpha == 4.0
    status, stdout, _ = run(["sample", "--checkpoint", str(out), "--prompt", "Explain this topic.",
                             "--input", "Lambdas", "--max-new-tokens", "5"], capsys)  # fmt: skip
    assert status == 0
    assert stdout.startswith(
        "\n--- response ---\n" + format_prompt("Explain this topic.", "Lambdas")
    )


def test_finetune_resume_reproduces_an_uninterrupted_run(pretrained, tmp_path, capsys):
    common = ["--checkpoint", str(pretrained), "--task", "instruct", "--lora-rank", "2",
              "--eval-interval", "2", "--warmup-steps", "1", *FAST]  # fmt: skip
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    assert run(["finetune", *common, "--steps", "4", "--out", str(straight)], capsys)[0] == 0
    assert run(["finetune", *common, "--steps", "2", "--lr-decay-steps", "4",
                "--out", str(halves)], capsys)[0] == 0  # fmt: skip
    status, stdout, _ = run(["finetune", "--out", str(halves), "--resume", "--steps", "4",
                             "--no-progress"], capsys)  # fmt: skip
    assert status == 0 and "resuming gpt_instruct" in stdout
    assert [r["loss"] for r in read_metrics(straight)] == [r["loss"] for r in read_metrics(halves)]
    a, b = load_checkpoint(straight).model, load_checkpoint(halves).model
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    bad(["train", "--out", str(halves), "--resume", "--steps", "9"], capsys,
        "holds no training run to continue")  # fmt: skip
    bad(["finetune", "--out", str(pretrained), "--resume", "--steps", "9"], capsys,
        "holds no fine-tuning run to continue")  # fmt: skip


@pytest.fixture(scope="module")
def other_architectures(tmp_path_factory):
    root = tmp_path_factory.mktemp("others")
    save_checkpoint(root / "encoder", EncoderModel(EncoderConfig(n_layer=1, n_embd=16)), 0)
    save_checkpoint(root / "seq2seq", EncoderDecoder(EncoderDecoderConfig(n_embd=16)), 0)
    return root


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--lora-rank", "64"], "LoRA rank 64 is larger than the width of the 'qkv' layers"),
        (["--lora-rank", "2", "--lora-targets", "qkv,proj"], "lora targets must be distinct"),
        (["--lora-alpha", "4"], "--lora-alpha and --lora-targets need --lora-rank"),
        (["--trainable-blocks", "3"], "trainable_blocks must be in [0, n_layer=1], got 3"),
        (["--pooling", "mean", "--task", "instruct"], "--pooling is for --task classify"),
        (["--steps", "0"], None),
        (["--resume"], "it takes --steps but not --checkpoint, --task"),
    ],
)  # fmt: skip
def test_bad_finetune_settings_fail_before_any_work(pretrained, tmp_path, capsys, extra, message):
    out = tmp_path / "run"
    argv = ["finetune", "--checkpoint", str(pretrained), "--task", "classify", "--out", str(out)]
    if message is None:  # argparse's own one-line error
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, *extra])
        assert exit_info.value.code == 2
        assert "argument --steps: must be a positive integer" in capsys.readouterr().err
    else:
        bad([*argv, *extra], capsys, message)
    assert not out.exists()


def test_finetune_refuses_other_architectures_and_unknown_tasks(
    pretrained, other_architectures, tmp_path, capsys
):
    out = str(tmp_path / "run")
    for kind, folder in [("encoder", "encoder"), ("encoder_decoder", "seq2seq")]:
        bad(["finetune", "--checkpoint", str(other_architectures / folder), "--task",
             "classify", "--out", out], capsys,
            f"holds a {kind} model; finetune starts from a GPT")  # fmt: skip
    with pytest.raises(SystemExit):
        main(["finetune", "--checkpoint", str(pretrained), "--task", "summarize", "--out", out])
    err = capsys.readouterr().err
    assert "argument --task: invalid choice: 'summarize'" in err and len(err.splitlines()) == 1
    bad(["finetune", "--task", "classify", "--out", out], capsys, "--checkpoint is required")
    bad(["finetune", "--out", out, "--resume"], capsys, "holds no run to continue")
    bad(["sample", "--checkpoint", str(pretrained), "--input", "x"], capsys,
        "--input is for instruction-tuned models")  # fmt: skip
    assert not (tmp_path / "run").exists()


def test_finetune_does_not_overwrite_a_run(pretrained, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / CHECKPOINT_FILE).write_bytes(b"x")
    bad(["finetune", "--checkpoint", str(pretrained), "--task", "classify", "--out", str(out)],
        capsys, "already holds a run")  # fmt: skip
