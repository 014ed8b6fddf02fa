"""Words to token ids for text-conditioned generators: the vocabulary a run was trained with.

A caption is lower-cased and split into words (letters only); each word must be in the
vocabulary, whose id 0 is padding. The vocabulary is saved with the run (``run.json``), so a
trained generator turns prompts into tokens without its dataset.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .errors import GanforgeError

PAD = "<pad>"
MAX_WORDS = 32  # a prompt longer than this is refused


def words(caption: str) -> list[str]:
    return re.findall(r"[a-z]+", caption.lower())


class Vocabulary:
    def __init__(self, vocab: list[str]) -> None:
        self.words = [PAD] + sorted(set(vocab) - {PAD})
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def of(cls, captions: list[str]) -> Vocabulary:
        return cls(sorted({w for c in captions for w in words(c)}))

    def __len__(self) -> int:
        return len(self.words)

    def ids(self, caption: str) -> list[int]:
        """Token ids of one caption; unknown words are refused with the vocabulary's closest words."""
        ws = words(caption)
        if not ws:
            raise GanforgeError(f"prompt {caption!r} has no words; expected a sentence such as "
                                "'a red circle left of a blue square'")
        if len(ws) > MAX_WORDS:
            raise GanforgeError(f"prompt {caption[:40]!r}... has {len(ws)} words; at most {MAX_WORDS} are allowed")
        unknown = list(dict.fromkeys(w for w in ws if w not in self.index))
        if unknown:
            hints = []
            for w in unknown:
                close = difflib.get_close_matches(w, self.words[1:], n=3, cutoff=0.5)
                hints.append(f"{w!r} (did you mean {' or '.join(repr(c) for c in close)}?)" if close else repr(w))
            raise GanforgeError(f"unknown word{'s' if len(unknown) > 1 else ''} {', '.join(hints)} in the prompt "
                                f"{caption!r}; `ganforge list vocabulary RUN` lists the {len(self.words) - 1} words "
                                "this run knows")
        return [self.index[w] for w in ws]

    def encode(self, captions: list[str], length: int = MAX_WORDS) -> torch.Tensor:
        """``[n, length]`` int64 token ids, padded with 0."""
        out = torch.zeros(len(captions), length, dtype=torch.long)
        for i, c in enumerate(captions):
            ids = self.ids(c)[:length]
            out[i, : len(ids)] = torch.tensor(ids)
        return out

    def decode(self, tokens: torch.Tensor) -> str:
        return " ".join(self.words[int(t)] for t in tokens if int(t))


def caption_tokens(captions: list[list[str]], vocab: Vocabulary) -> torch.Tensor:
    """``[N, K, L]`` token ids of every image's captions; images with fewer than K repeat theirs in turn."""
    k = max(len(cs) for cs in captions)
    length = max(len(words(c)) for cs in captions for c in cs)
    flat = [cs[i % len(cs)] for cs in captions for i in range(k)]
    return vocab.encode(flat, min(length, MAX_WORDS)).view(len(captions), k, -1)


@dataclass
class WordSwaps:
    """Hard negatives made from captions by swapping words, with what may be swapped read from the captions alone.

    ``table[a, b]``: word a may be replaced by word b to make a caption that says something else. Two words are
    swappable when some two captions differ in just those words at one position ("a big red circle" / "a big
    blue circle"), unless two captions of one image differ that way (synonyms: "circle" / "disc"; they need
    images with several captions to be told apart). ``follows[a, b]``: b follows a somewhere in the captions.
    """

    table: torch.Tensor  # [V, V] bool
    follows: torch.Tensor  # [V, V] bool

    @classmethod
    def of(cls, tokens: torch.Tensor, vocab_size: int) -> WordSwaps:
        """From every image's captions as token ids ``[N, K, L]`` (:func:`caption_tokens`)."""
        n, k, length = tokens.shape
        flat = tokens.reshape(n * k, length)
        image = torch.arange(n).repeat_interleave(k)[:, None]
        swappable = torch.zeros(vocab_size, vocab_size)
        synonyms = torch.zeros(vocab_size, vocab_size)
        for i in range(length):  # captions alike but for the word at i, over all captions and within one image
            word = flat[:, i]
            masked = torch.cat([flat[:, :i], flat[:, i + 1:]], 1)
            for counts, key in ((swappable, masked), (synonyms, torch.cat([image, masked], 1))):
                group = torch.unique(key, dim=0, return_inverse=True)[1]
                seen = torch.zeros(int(group.max()) + 1, vocab_size)
                seen[group, word] = 1  # [groups, V]: the words each group has at i
                counts += seen.t() @ seen
        table = (swappable > 0) & (synonyms == 0)
        table[0, :] = table[:, 0] = False  # padding: a shorter caption is not a swap
        table.fill_diagonal_(False)
        follows = torch.zeros(vocab_size, vocab_size, dtype=torch.bool)
        follows[flat[:, :-1], flat[:, 1:]] = True
        return cls(table, follows)

    def swap(self, tokens: torch.Tensor, uniform: Callable[..., torch.Tensor]) -> torch.Tensor:
        """Captions ``[N, L]``, each with one word replaced by a swappable one, or, for about half of those holding
        two words swappable with each other, those two exchanged ("a red circle left of a blue square" -> "a blue
        circle left of a red square": the words bound to the wrong things). Captions without a swappable word stay
        as they are. ``uniform(*shape)`` draws the randomness in [0, 1)."""
        n, length = tokens.shape
        rows = torch.arange(n, device=tokens.device)
        table = self.table.to(tokens.device)
        swappable = table[tokens].any(-1)  # [N, L]
        pos = (uniform(n, length) - 1 + swappable.float()).argmax(1)  # a random swappable position (0 when none)
        out = tokens.clone()
        out[rows, pos] = (uniform(n, table.shape[1]) * table[tokens[rows, pos]]).argmax(1)
        pairs = table[tokens[:, :, None], tokens[:, None, :]].flatten(1)  # [N, L * L]: word i swappable with word j
        flat = (uniform(n, length * length) * pairs).argmax(1)
        i, j = flat // length, flat % length
        exchange = pairs.any(1) & (uniform(n) < 0.5)
        exchanged = tokens.clone()
        exchanged[rows, i], exchanged[rows, j] = tokens[rows, j], tokens[rows, i]
        out[exchange] = exchanged[exchange]
        out[~swappable.any(1)] = tokens[~swappable.any(1)]
        return out

    def plausible(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[N]`` bool: every two neighbouring words of the caption follow each other somewhere in the captions.
        A swap that makes a word pair the captions never use ("green triangle" when no caption has one) would
        teach the encoders and D that the pair never matches a picture, which hurts exactly the new combinations
        a user asks for."""
        follows = self.follows.to(tokens.device)
        return (follows[tokens[:, :-1], tokens[:, 1:]] | (tokens[:, 1:] == 0)).all(1)
