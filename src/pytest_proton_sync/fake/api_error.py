"""The fake's error answer, apart from api.py so that the list operations (listing.py), which api.py dispatches to,
raise it without importing api.py back."""

from __future__ import annotations


class ApiError(Exception):
    """An error answer: ``code`` goes out as ``__type`` and ``x-amzn-ErrorType``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
