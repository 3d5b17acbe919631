"""The refusal of the student's machine learning. No Django import here."""

from __future__ import annotations


class StudentError(Exception):
    """A student run cannot start or go on; the message says why, in words for people."""
