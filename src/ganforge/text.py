"""Words to token ids for text-conditioned generators: the vocabulary a run was trained with.

A caption is lower-cased and split into words (letters only); each word must be in the
vocabulary, whose id 0 is padding. The vocabulary is saved with the run (``run.json``), so a
trained generator turns prompts into tokens without its dataset.
"""
from __future__ import annotations

import difflib
import re

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
