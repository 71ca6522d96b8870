"""Bad input from a person, said back in their language (``Context.explain``)."""

from __future__ import annotations

from typing import Any


class InputError(ValueError):
    """What a person typed cannot be used: the catalogue key of what to tell them, and its
    parameters. Raised by a command's parser, answered by ``Context.explain``."""

    def __init__(self, key: str, **params: Any):
        super().__init__(key)
        self.key = key
        self.params = params
