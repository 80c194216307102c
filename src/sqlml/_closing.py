"""A context manager for anything with a ``close()``."""

from __future__ import annotations

from typing import Self


class Closing:
    """``with obj:`` closes ``obj`` at the end of the block."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
