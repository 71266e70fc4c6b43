"""Who is the human calling the mobile endpoints: a verified Firebase ID token's uid, which is
also their tenant id."""

from __future__ import annotations

from abc import ABC, abstractmethod


class InvalidIdToken(Exception):
    pass


class IdTokenVerifier(ABC):
    @abstractmethod
    def verify(self, token: str) -> str:
        """Return the uid of a valid token, or raise InvalidIdToken."""
