"""Generation: a language model writes by predicting one token, appending it, and repeating.

Read top to bottom:

1. From logits to a choice. `filter_top_k` and `filter_top_p` cut the tail of the
   distribution; `next_token_probabilities` applies temperature and those filters;
   `choose_next` picks greedily or draws.
2. Decoders. `GPTDecoder` and `EncoderDecoderDecoder` give one interface over both kinds of
   model: the next-token logits for the sequences so far, `append` a token to each, `select`
   rows (beam search follows its beams). With a KV cache each new token costs one position;
   without it, every step runs the whole context again. Both give the same tokens.
   `RecurrentDecoder` and `ConvDecoder` do the same for the models that came before
   transformers (transformer.baselines): an RNN's cache is its state; a CNN has none.
3. `generate`: greedy, temperature, top-k, top-p sampling and beam search, stopping at an
   end token or after `max_new_tokens`. It returns the new tokens only (not the prompt, not
   the end token).

The context window includes the generated tokens: a GPT sees at most its last `block_size`
tokens, so once the text is longer the oldest tokens fall out of view.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from minigrad import no_grad
from minigrad.functional import softmax_array
from minigrad.nn import RngLike, make_rng
from transformer.baselines import ConvLanguageModel, RecurrentLanguageModel
from transformer.models import GPT, EncoderDecoder, check_ids

LANGUAGE_MODELS = (GPT, RecurrentLanguageModel, ConvLanguageModel)  # continue a prompt


# ===================================================================== 1. logits -> token
def filter_top_k(logits: np.ndarray, k: int) -> np.ndarray:
    """Keep the k largest logits of each row (and any tied with the k-th); the rest -inf.

    logits (..., V) -> (..., V). Sampling then never picks a token outside the k most likely.
    """
    if k >= logits.shape[-1]:
        return logits
    kth = np.partition(logits, -k, axis=-1)[..., -k, None]  # (..., 1) the k-th largest
    return np.where(logits >= kth, logits, -np.inf)


def filter_top_p(logits: np.ndarray, p: float) -> np.ndarray:
    """Nucleus filtering: keep the smallest set of most likely tokens whose probability
    reaches p, including the token that crosses it; the rest -inf.  (..., V) -> (..., V).

    A token is kept when the probability of the tokens more likely than it is below p, so
    the most likely token is always kept and the kept set adapts to how peaked the row is.
    """
    probs = softmax_array(logits)
    order = np.argsort(-probs, axis=-1, kind="stable")  # most likely first
    sorted_probs = np.take_along_axis(probs, order, axis=-1)
    mass_before = np.cumsum(sorted_probs, axis=-1) - sorted_probs  # (..., V)
    keep_sorted = mass_before < p
    keep = np.empty_like(keep_sorted)
    np.put_along_axis(keep, order, keep_sorted, axis=-1)
    return np.where(keep, logits, -np.inf)


def next_token_probabilities(
    logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
    top_p: float | None = None,
) -> np.ndarray:  # fmt: skip
    """softmax(filters(logits / temperature)):  (B, V) -> (B, V).

    Temperature < 1 sharpens the distribution toward the most likely token, > 1 flattens
    it; then top-k and top-p remove the unlikely tail.
    """
    logits = logits.astype(np.float64) / temperature
    if top_k is not None:
        logits = filter_top_k(logits, top_k)
    if top_p is not None:
        logits = filter_top_p(logits, top_p)
    return softmax_array(logits)


def choose_next(
    logits: np.ndarray, rng: np.random.Generator, temperature: float = 1.0,
    top_k: int | None = None, top_p: float | None = None,
) -> np.ndarray:  # fmt: skip
    """One token per row of logits (B, V) -> (B,): the argmax when temperature is 0 (greedy),
    otherwise a draw from `next_token_probabilities`."""
    if temperature == 0:
        return logits.argmax(axis=-1)
    probs = next_token_probabilities(logits, temperature, top_k, top_p)
    cumulative = np.cumsum(probs, axis=-1)  # inverse-CDF draw, one uniform number per row
    draws = rng.random((len(probs), 1)) * cumulative[:, -1:]
    return np.minimum((cumulative <= draws).sum(axis=-1), probs.shape[-1] - 1)


# ===================================================================== 2. decoders
class GPTDecoder:
    """Sequences (B, T) growing token by token through a GPT, with or without a KV cache.

    The model sees the last `block_size` tokens. With the cache, each step feeds only the
    new token while the window still has room; once it is full the window slides, the
    positions of every kept token change, and the cache is rebuilt from the window.
    """

    def __init__(self, model: GPT, prompt: np.ndarray, use_cache: bool = True) -> None:
        self.model, self.ids, self.use_cache = model, prompt, use_cache
        self.block_size = model.config.block_size
        self.cache = None
        self.pending = prompt  # tokens the cache has not seen yet

    def logits(self) -> np.ndarray:
        """Next-token logits for every row:  (B, V)."""
        window = self.ids[:, -self.block_size :]
        if not self.use_cache:
            return self._last_logits(window, None)
        if self.cache is None or len(self.cache[0]) + self.pending.shape[1] > self.block_size:
            self.cache, self.pending = self.model.new_cache(), window  # (re)fill the window
        logits = self._last_logits(self.pending, self.cache)
        self.pending = self.ids[:, :0]
        return logits

    def _last_logits(self, ids: np.ndarray, cache: Any) -> np.ndarray:
        hidden = self.model.hidden_states(ids, cache)[:, -1:]  # (B, 1, C): the last position
        return self.model.head(hidden).data[:, 0]  # (B, V)

    def append(self, tokens: np.ndarray) -> None:
        self.ids = np.concatenate([self.ids, tokens[:, None]], axis=1)
        self.pending = np.concatenate([self.pending, tokens[:, None]], axis=1)

    def select(self, rows: np.ndarray) -> None:
        self.ids, self.pending = self.ids[rows], self.pending[rows]
        for layer_cache in self.cache or ():
            layer_cache.select(rows)

    @property
    def room(self) -> float:
        return math.inf  # the window slides: a GPT can always write one more token


class EncoderDecoderDecoder:
    """Targets (B, T) growing from the start token, attending to one encoded source."""

    def __init__(self, model: EncoderDecoder, src: np.ndarray, use_cache: bool = True) -> None:
        self.model, self.src, self.use_cache = model, src, use_cache
        self.memory = model.encode(src)  # (B, S, C), computed once
        self.ids = np.full((len(src), 1), model.config.bos_id)  # (B, 1)
        self.cache = model.new_cache() if use_cache else None

    def logits(self) -> np.ndarray:
        if self.use_cache:
            new = self.ids[:, len(self.cache[0][0]) :]  # the tokens the cache has not seen
            return self.model.decode(new, self.memory, self.src, self.cache).data[:, -1]
        return self.model.decode(self.ids, self.memory, self.src).data[:, -1]  # (B, V)

    def append(self, tokens: np.ndarray) -> None:
        self.ids = np.concatenate([self.ids, tokens[:, None]], axis=1)

    def select(self, rows: np.ndarray) -> None:
        self.ids, self.src, self.memory = self.ids[rows], self.src[rows], self.memory[rows]
        for self_cache, cross_cache in self.cache or ():
            self_cache.select(rows)
            cross_cache.select(rows)

    @property
    def room(self) -> int:
        """How many more tokens can be written: the last one is predicted at position
        block_size - 1, the decoder's last."""
        return self.model.config.block_size - self.ids.shape[1] + 1


class RecurrentDecoder:
    """Sequences growing through an RNN, LSTM or GRU language model.

    The recurrent state is the cache: it sums up every token fed so far, so each step feeds
    only the new token (where a KV cache grows with the text, the state keeps its size). The
    model sees the last `block_size` tokens, as a GPT does (it was trained on windows that
    long, from a zero state): once the text is longer, the state is rebuilt from the window
    at each step. With or without the state, the same tokens come out.
    """

    def __init__(
        self, model: RecurrentLanguageModel, prompt: np.ndarray, use_cache: bool = True
    ) -> None:
        self.model, self.ids, self.use_cache = model, prompt, use_cache
        self.block_size = model.config.block_size
        self.state, self.fed = None, 0  # the state after the window's first `fed` tokens
        self.pending = prompt  # tokens the state has not seen yet

    def logits(self) -> np.ndarray:
        """Next-token logits for every row:  (B, V)."""
        if not self.use_cache or self.fed + self.pending.shape[1] > self.block_size:
            self.state, self.fed = None, 0  # (re)start from the window
            self.pending = self.ids[:, -self.block_size :]
        hidden, self.state = self.model.hidden_states(self.pending, self.state)  # (B, T, H)
        self.fed += self.pending.shape[1]
        self.pending = self.ids[:, :0]
        return self.model.head(hidden[:, -1:]).data[:, 0]  # (B, V)

    def append(self, tokens: np.ndarray) -> None:
        self.ids = np.concatenate([self.ids, tokens[:, None]], axis=1)
        self.pending = np.concatenate([self.pending, tokens[:, None]], axis=1)

    def select(self, rows: np.ndarray) -> None:
        self.ids, self.pending = self.ids[rows], self.pending[rows]
        if isinstance(self.state, tuple):  # the LSTM's (h_n, c_n), each (n_layer, B, H)
            self.state = tuple(part[:, rows] for part in self.state)
        elif self.state is not None:
            self.state = self.state[:, rows]

    @property
    def room(self) -> float:
        return math.inf


class ConvDecoder:
    """Sequences growing through a causal convolutional language model.

    A convolution keeps no state: each step runs the model again over the last tokens. Only
    the last `receptive_field` tokens reach the next prediction, so the window holds
    min(block_size, receptive_field) of them; `use_cache` changes nothing here (keeping each
    layer's recent outputs, as fast WaveNet generation does, would make a step one position).
    """

    def __init__(self, model: ConvLanguageModel, prompt: np.ndarray) -> None:
        self.model, self.ids = model, prompt
        self.window = min(model.config.block_size, model.config.receptive_field)

    def logits(self) -> np.ndarray:
        hidden = self.model.hidden_states(self.ids[:, -self.window :])[:, -1:]  # (B, 1, C)
        return self.model.head(hidden).data[:, 0]  # (B, V)

    def append(self, tokens: np.ndarray) -> None:
        self.ids = np.concatenate([self.ids, tokens[:, None]], axis=1)

    def select(self, rows: np.ndarray) -> None:
        self.ids = self.ids[rows]

    @property
    def room(self) -> float:
        return math.inf


Decoder = GPTDecoder | EncoderDecoderDecoder | RecurrentDecoder | ConvDecoder


def make_decoder(model: Any, prompt: np.ndarray, use_cache: bool) -> Decoder:
    """The decoder for `model`'s kind."""
    if isinstance(model, EncoderDecoder):
        return EncoderDecoderDecoder(model, prompt, use_cache)
    if isinstance(model, RecurrentLanguageModel):
        return RecurrentDecoder(model, prompt, use_cache)
    if isinstance(model, ConvLanguageModel):
        return ConvDecoder(model, prompt)
    return GPTDecoder(model, prompt, use_cache)


# ===================================================================== 3. the loop
def generate(
    model: GPT | RecurrentLanguageModel | ConvLanguageModel | EncoderDecoder,
    prompt: Any,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    num_beams: int = 1,
    length_penalty: float = 1.0,
    eos_id: int | None = None,
    rng: RngLike = None,
    use_cache: bool = True,
) -> list[int] | list[list[int]]:
    """Write up to `max_new_tokens` tokens after `prompt` (for a GPT, or a recurrent or
    convolutional language model) or for the source `prompt` (for an EncoderDecoder, which
    starts from its bos_id).

    prompt: token ids, one sequence (a list) or a batch (B, T); the result has the same form:
        the new tokens of each sequence, without the prompt and without the end token.
    temperature: 0 is greedy (always the most likely token); otherwise sampling from
        softmax(logits / temperature), restricted by `top_k` and `top_p` if given.
    num_beams > 1: beam search (one sequence at a time), keeping the `num_beams` best partial
        sequences by total log-probability and returning the finished one with the best
        score / length ** length_penalty; it stops once num_beams sequences have ended.
    eos_id: stop a sequence when it writes this token (an EncoderDecoder's eos_id by default).
    rng: seed or generator for sampling; use_cache: feed one new token per step.
    """
    check_generation_settings(max_new_tokens, temperature, top_k, top_p, num_beams)
    single = np.ndim(prompt) == 1
    prompt = np.atleast_2d(np.asarray(prompt, dtype=np.int64))
    if isinstance(model, EncoderDecoder):
        prompt = check_ids(prompt, model.config.vocab_size, "source")
        eos_id = model.config.eos_id if eos_id is None else eos_id
    elif isinstance(model, LANGUAGE_MODELS):
        prompt = check_ids(prompt, model.config.vocab_size, "prompt")
        if prompt.shape[1] == 0:
            raise ValueError(
                f"the prompt is empty: a {type(model).__name__} needs at least one token to "
                "continue"
            )
        if prompt.shape[1] > model.config.block_size:
            warnings.warn(
                f"the prompt has {prompt.shape[1]} tokens, more than the context "
                f"(block_size={model.config.block_size}); only its last "
                f"{model.config.block_size} are seen",
                stacklevel=2,
            )
    else:
        raise TypeError(
            f"generate needs a language model or an EncoderDecoder, got {type(model).__name__}"
        )
    if num_beams > 1 and len(prompt) > 1:
        raise ValueError("beam search takes one prompt at a time, got a batch of "
                         f"{len(prompt)}")  # fmt: skip

    was_training = model.training
    model.eval()
    try:
        with no_grad():
            decoder = make_decoder(model, prompt, use_cache)
            if num_beams > 1:
                rows = [beam_search(decoder, max_new_tokens, num_beams, length_penalty, eos_id)]
            else:
                settings = {"temperature": temperature, "top_k": top_k, "top_p": top_p}
                rows = sample(decoder, max_new_tokens, eos_id, make_rng(rng), settings)
    finally:
        model.train(was_training)
    return rows[0] if single else rows


def check_generation_settings(
    max_new_tokens: int, temperature: float, top_k: int | None, top_p: float | None,
    num_beams: int,
) -> None:  # fmt: skip
    """A ValueError naming the first setting out of its range."""
    if not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if not (isinstance(temperature, (int, float)) and 0 <= temperature < math.inf):
        raise ValueError(f"temperature must be >= 0 (0 is greedy), got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
    if not isinstance(num_beams, (int, np.integer)) or num_beams < 1:
        raise ValueError(f"num_beams must be a positive integer, got {num_beams!r}")


def sample(
    decoder: Decoder, max_new_tokens: int, eos_id: int | None,
    rng: np.random.Generator, settings: dict[str, Any],
) -> list[list[int]]:  # fmt: skip
    """Greedy or sampled decoding of every row at once, each row ending at its eos_id."""
    B = len(decoder.ids)
    written: list[list[int]] = [[] for _ in range(B)]
    running = np.ones(B, dtype=bool)
    for _ in range(min(max_new_tokens, decoder.room)):
        tokens = choose_next(decoder.logits(), rng, **settings)  # (B,)
        for b in np.flatnonzero(running):
            if tokens[b] == eos_id:
                running[b] = False
            else:
                written[b].append(int(tokens[b]))
        if not running.any():
            break
        decoder.append(tokens)
    return written


def beam_search(
    decoder: Decoder, max_new_tokens: int, num_beams: int,
    length_penalty: float, eos_id: int | None,
) -> list[int]:  # fmt: skip
    """The best sequence by score / length ** length_penalty, where score is the sum of the
    log-probabilities of its tokens; `num_beams` partial sequences are kept at each step."""
    beams: list[list[int]] = [[]]  # the running partial sequences, best first
    scores = np.zeros(1)  # (n_beams,) their total log-probabilities
    finished: list[tuple[float, list[int]]] = []  # (normalized score, tokens)
    steps = min(max_new_tokens, decoder.room)
    for step in range(steps):
        logits = decoder.logits()  # (n_beams, V)
        log_probs = logits - logits.max(axis=-1, keepdims=True)
        log_probs = log_probs - np.log(np.exp(log_probs).sum(axis=-1, keepdims=True))
        candidates = (scores[:, None] + log_probs).ravel()  # (n_beams * V,)
        V = logits.shape[-1]
        order = np.argsort(-candidates, kind="stable")[: 2 * num_beams]
        next_rows, next_tokens, next_scores = [], [], []
        for flat in order:
            row, token = divmod(int(flat), V)
            if token == eos_id:  # a finished hypothesis: its length counts the end token
                length = len(beams[row]) + 1
                finished.append((candidates[flat] / length**length_penalty, beams[row]))
            else:
                next_rows.append(row)
                next_tokens.append(token)
                next_scores.append(candidates[flat])
            if len(finished) >= num_beams or len(next_rows) == num_beams:
                break
        if len(finished) >= num_beams:
            break
        rows = np.array(next_rows)
        beams = [beams[r] + [t] for r, t in zip(next_rows, next_tokens)]
        scores = np.array(next_scores)
        decoder.select(rows)
        if step + 1 < steps:
            decoder.append(np.array(next_tokens))
    for beam, score in zip(beams, scores):  # unfinished beams compete as they are
        if len(finished) >= num_beams:
            break
        finished.append((score / max(len(beam), 1) ** length_penalty, beam))
    return max(finished, key=lambda pair: pair[0])[1]
