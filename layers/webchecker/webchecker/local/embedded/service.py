"""The shape every service Webchecker starts on this machine shares: start, stop, ``with``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self


class Service(ABC):
    """Something started and stopped here; ``with service:`` starts it and always stops it."""

    @abstractmethod
    def start(self) -> Self:
        """Starts the service (a no-op when it runs already) and returns it."""

    @abstractmethod
    def stop(self) -> None:
        """Stops what ``start`` started (a no-op when nothing runs)."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
