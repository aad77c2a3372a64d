"""Text generation with an encoder-decoder ONNX model on onnxruntime: greedy and beam search, with the KV cache.

Three graphs, named as Optimum names them: `encoder_model.onnx` (input_ids, attention_mask ->
last_hidden_state), `decoder_model.onnx` (the first step: input_ids, encoder_attention_mask,
encoder_hidden_states -> logits and `present.{i}.{decoder,encoder}.{key,value}`) and
`decoder_with_past_model.onnx` (each later step: one token per sequence and the cache ->
logits and the grown self-attention cache; the cross-attention keys and values are computed once).

The search follows `transformers`' `generate` (4.57) step for step, so that the ONNX model writes
the text PyTorch writes: the same top-2k candidates per step, the same length penalty on
(generated tokens including the end token), the same early-stopping rule, the same no-repeat-n-gram
and minimum-length bans. numpy only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from ..data.summarization import trim_generated

ENCODER_FILE = "encoder_model.onnx"
DECODER_FILE = "decoder_model.onnx"
DECODER_WITH_PAST_FILE = "decoder_with_past_model.onnx"
_NEG = -1.0e9


@dataclass
class GenerationSettings:
    """What `generate` needs beyond the graphs; saved as the checkpoint's `generation_config.json`
    and copied into the bundle manifest's `task_settings`."""

    decoder_start_token_id: int
    eos_token_id: int
    pad_token_id: int
    num_beams: int = 4
    max_new_tokens: int = 64
    min_new_tokens: int = 0
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    early_stopping: bool | str = False

    @classmethod
    def from_dict(cls, values: dict) -> "GenerationSettings":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known and v is not None})

    def to_dict(self) -> dict:
        return asdict(self)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float32)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _ban(scores: np.ndarray, sequences: np.ndarray, length: int, settings: GenerationSettings) -> np.ndarray:
    """The logits processors `generate` applies: no end token before `min_new_tokens`, no repeated n-gram."""
    generated = length - 1  # the decoder start token is the prompt
    if generated < settings.min_new_tokens:
        scores[:, settings.eos_token_id] = -np.inf
    n = settings.no_repeat_ngram_size
    if n and length + 1 >= n:
        for row in range(sequences.shape[0]):
            tokens = sequences[row, :length].tolist()
            prefix = tuple(tokens[length - n + 1 :])
            banned = [tokens[i + n - 1] for i in range(length - n + 1) if tuple(tokens[i : i + n - 1]) == prefix]
            if banned:
                scores[row, banned] = -np.inf
    return scores


class Seq2SeqGenerator:
    """The three sessions and the search. `generate(input_ids, attention_mask)` returns token ids per input.

    Example:
        >>> generator = Seq2SeqGenerator(encoder, decoder, decoder_with_past, settings)  # doctest: +SKIP
        >>> generator.generate(ids, mask, num_beams=1)  # doctest: +SKIP
        [[2054, 2003, 1012, 102]]
    """

    def __init__(self, encoder, decoder, decoder_with_past, settings: GenerationSettings):
        self.encoder, self.decoder, self.decoder_with_past = encoder, decoder, decoder_with_past
        self.settings = settings
        self.past_names = [i.name for i in decoder_with_past.get_inputs() if i.name.startswith("past_key_values.")]
        self.present_names = [o.name for o in decoder.get_outputs() if o.name.startswith("present.")]
        self.self_names = [o.name for o in decoder_with_past.get_outputs() if o.name.startswith("present.")]
        self.first_inputs = {i.name for i in decoder.get_inputs()}
        self.first_outputs = [o.name for o in decoder.get_outputs()]
        self.next_outputs = [o.name for o in decoder_with_past.get_outputs()]

    def encode(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return self.encoder.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})[0]

    def first_step(self, tokens: np.ndarray, mask: np.ndarray, hidden: np.ndarray) -> tuple[np.ndarray, dict]:
        feed = {"input_ids": tokens, "encoder_attention_mask": mask, "encoder_hidden_states": hidden}
        outputs = self.decoder.run(None, {k: v for k, v in feed.items() if k in self.first_inputs})
        values = dict(zip(self.first_outputs, outputs))
        past = {name.replace("present.", "past_key_values.", 1): values[name] for name in self.present_names}
        return values["logits"][:, -1, :], past

    def next_step(self, tokens: np.ndarray, mask: np.ndarray, past: dict) -> tuple[np.ndarray, dict]:
        outputs = self.decoder_with_past.run(None, {"input_ids": tokens, "encoder_attention_mask": mask,
                                                    **{name: past[name] for name in self.past_names}})
        values = dict(zip(self.next_outputs, outputs))
        grown = dict(past)
        grown.update({name.replace("present.", "past_key_values.", 1): values[name] for name in self.self_names})
        return values["logits"][:, -1, :], grown

    def generate(self, input_ids: np.ndarray, attention_mask: np.ndarray, num_beams: int | None = None,
                 max_new_tokens: int | None = None) -> list[list[int]]:
        """Token ids generated for each input (the decoder start token left out, the end token kept)."""
        num_beams = self.settings.num_beams if num_beams is None else num_beams
        max_new_tokens = self.settings.max_new_tokens if max_new_tokens is None else max_new_tokens
        input_ids, attention_mask = input_ids.astype(np.int64), attention_mask.astype(np.int64)
        hidden = self.encode(input_ids, attention_mask)
        if num_beams <= 1:
            return self._greedy(hidden, attention_mask, max_new_tokens)
        return self._beam_search(hidden, attention_mask, num_beams, max_new_tokens)

    def _greedy(self, hidden: np.ndarray, mask: np.ndarray, max_new_tokens: int) -> list[list[int]]:
        s, batch = self.settings, hidden.shape[0]
        max_length = 1 + max_new_tokens
        sequences = np.full((batch, max_length), s.pad_token_id, dtype=np.int64)
        sequences[:, 0] = s.decoder_start_token_id
        unfinished = np.ones(batch, dtype=bool)
        logits, past = self.first_step(sequences[:, :1], mask, hidden)
        length = 1
        while True:
            scores = _ban(logits.astype(np.float32), sequences, length, s)  # astype copies: _ban writes in place
            tokens = np.where(unfinished, scores.argmax(axis=-1), s.pad_token_id)
            sequences[:, length] = tokens
            length += 1
            unfinished &= tokens != s.eos_token_id
            if not unfinished.any() or length >= max_length:
                break
            logits, past = self.next_step(tokens[:, None], mask, past)
        return [trim_generated(row[1:length].tolist(), s.eos_token_id, s.pad_token_id) for row in sequences]

    def _beam_search(self, hidden: np.ndarray, mask: np.ndarray, num_beams: int, max_new_tokens: int) -> list[list[int]]:
        s, batch = self.settings, hidden.shape[0]
        max_length = 1 + max_new_tokens
        keep = 2 * num_beams
        top_mask = np.arange(keep) < num_beams
        hidden, mask = np.repeat(hidden, num_beams, axis=0), np.repeat(mask, num_beams, axis=0)
        running = np.full((batch, num_beams, max_length), s.pad_token_id, dtype=np.int64)
        running[:, :, 0] = s.decoder_start_token_id
        finished = running.copy()
        running_scores = np.zeros((batch, num_beams), dtype=np.float32)
        running_scores[:, 1:] = _NEG
        finished_scores = np.full((batch, num_beams), _NEG, dtype=np.float32)
        is_finished = np.zeros((batch, num_beams), dtype=bool)
        improvable = np.ones((batch, 1), dtype=bool)
        length, past = 1, None
        while True:
            flat = running[:, :, :length].reshape(batch * num_beams, length)
            if past is None:
                logits, past = self.first_step(flat, mask, hidden)
            else:
                logits, past = self.next_step(flat[:, -1:], mask, past)
            log_probs = _ban(_log_softmax(logits), flat, length, s)
            vocab = log_probs.shape[-1]
            totals = (log_probs.reshape(batch, num_beams, vocab) + running_scores[:, :, None]).reshape(batch, -1)
            top = _top(totals, keep)
            top_scores = np.take_along_axis(totals, top, axis=1)
            top_beams, top_tokens = top // vocab, top % vocab
            candidates = np.take_along_axis(running, top_beams[:, :, None], axis=1)
            candidates[:, :, length] = top_tokens
            hits = (top_tokens == s.eos_token_id) | (length + 1 >= max_length)

            # the running beams of the next step: the best candidates that did not just end
            alive_scores = top_scores + hits.astype(np.float32) * _NEG
            chosen = np.argsort(-alive_scores, axis=1, kind="stable")[:, :num_beams]
            running = np.take_along_axis(candidates, chosen[:, :, None], axis=1)
            running_scores = np.take_along_axis(alive_scores, chosen, axis=1)
            source_beams = np.take_along_axis(top_beams, chosen, axis=1)

            # the finished beams: merge the candidates that just ended (among the top num_beams) by penalized score
            penalized = top_scores / float((length + 1 - 1) ** s.length_penalty)
            full = is_finished.all(axis=1, keepdims=True) & (s.early_stopping is True)
            just_finished = hits & top_mask[None, :]
            penalized = (penalized + full * _NEG + (~improvable) * _NEG + (~just_finished) * _NEG).astype(np.float32)
            merged = np.concatenate([finished, candidates], axis=1)
            merged_scores = np.concatenate([finished_scores, penalized], axis=1)
            merged_done = np.concatenate([is_finished, just_finished], axis=1)
            best = np.argsort(-merged_scores, axis=1, kind="stable")[:, :num_beams]
            finished = np.take_along_axis(merged, best[:, :, None], axis=1)
            finished_scores = np.take_along_axis(merged_scores, best, axis=1)
            is_finished = np.take_along_axis(merged_done, best, axis=1)

            order = (source_beams + np.arange(batch)[:, None] * num_beams).reshape(-1)
            past = {name: value[order] if ".decoder." in name else value for name, value in past.items()}
            length += 1
            if s.early_stopping == "never" and s.length_penalty > 0.0:
                best_length = max_length - 1
            else:
                best_length = length - 1
            best_possible = running_scores[:, :1] / float(best_length ** s.length_penalty)
            worst = np.where(is_finished, finished_scores.min(axis=1, keepdims=True), _NEG)
            improvable = improvable & (best_possible > worst).any(axis=1, keepdims=True)
            open_beams = not (is_finished.all() and s.early_stopping is True)
            if not (improvable.any() and open_beams and not hits.all()):
                break
        return [trim_generated(finished[b, 0, 1:].tolist(), s.eos_token_id, s.pad_token_id) for b in range(batch)]


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` largest values per row, largest first, ties by index (as `torch.topk` gives them here).
    A partial partition first: sorting all beams x vocabulary candidates at every step costs more than the model."""
    part = np.sort(np.argpartition(-values, k - 1, axis=1)[:, :k], axis=1)
    order = np.argsort(-np.take_along_axis(values, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)
