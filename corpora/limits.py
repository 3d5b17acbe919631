"""The rules of an import's settings, checked by the import services whichever door asked
(the import page's form and the API's serializer take the same rules from here)."""

from __future__ import annotations

from core.limits import choice_check, text_check

from .errors import CorpusError
from .formats import FORMATS
from .models import Corpus

CORPUS_NAME_MAX = Corpus._meta.get_field("name").max_length
IMPORT_FORMATS = ("auto", *FORMATS)


def import_settings_check(*, corpus_name: str, fmt: str) -> None:
    """CorpusError naming the first setting that breaks its rule, in the words of the
    import form (so the page, the API and the CLI say the same)."""
    text_check(corpus_name, max_length=CORPUS_NAME_MAX, field="corpus_name", error=CorpusError)
    choice_check(fmt, IMPORT_FORMATS, field="format", error=CorpusError)
