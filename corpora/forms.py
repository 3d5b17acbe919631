from __future__ import annotations

from django import forms

from .exporting import EXPORT_FORMATS
from .limits import CORPUS_NAME_MAX, IMPORT_FORMATS
from .models import Relation

IMPORT_FORMAT_CHOICES = [("auto", "Detect from the file")] + [
    (f, f) for f in IMPORT_FORMATS if f != "auto"
]
NONE_TAIL_CHOICES = [
    ("auto", "Drop them from ATOMIC TSV, keep them otherwise"),
    ("drop", "Drop them"),
    ("keep", "Keep them"),
]
NONE_TAIL_VALUES = {"auto": None, "drop": True, "keep": False}
EXPORT_FORMAT_CHOICES = [(f, f) for f in EXPORT_FORMATS]


def _max_length(model, field: str) -> int:
    return model._meta.get_field(field).max_length


class CorpusImportForm(forms.Form):
    file = forms.FileField(
        help_text="SKD JSONL, JSONL, ATOMIC TSV, CSV or COMET generations; .gz works too."
    )
    corpus_name = forms.CharField(
        label="Corpus",
        max_length=CORPUS_NAME_MAX,
        help_text="An existing corpus (the triples are added to it) or a new name.",
        widget=forms.TextInput(attrs={"list": "corpus-names", "autocomplete": "off"}),
    )
    format = forms.ChoiceField(choices=IMPORT_FORMAT_CHOICES, initial="auto")
    skip_invalid = forms.BooleanField(
        required=False,
        label="Skip invalid lines",
        help_text="Import the valid lines and keep the rejected ones, with reasons, in a file. "
        "Otherwise one invalid line stops the whole import.",
    )
    none_tails = forms.ChoiceField(
        label="'none' tails",
        choices=NONE_TAIL_CHOICES,
        initial="auto",
        required=False,
        help_text='ATOMIC writes "none" where a relation has no inference for a head; '
        "such rows are not triples.",
    )

    def clean_none_tails(self) -> bool | None:
        """drop_none for the import service: True, False, or None (by format)."""
        return NONE_TAIL_VALUES[self.cleaned_data["none_tails"] or "auto"]


class TripleFilterForm(forms.Form):
    """The search box and filters above a corpus's triple table (read from GET)."""

    q = forms.CharField(
        required=False,
        label="Head contains",
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Search heads…"}),
    )
    relation = forms.ChoiceField(required=False)
    split = forms.ChoiceField(required=False)

    def __init__(self, *args, relations: list[str], splits: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["relation"].choices = [("", "All relations")] + [(r, r) for r in relations]
        self.fields["split"].choices = [("", "All splits")] + [(s, s) for s in splits]

    def valid_values(self) -> dict[str, str]:
        """The filters that validated and are set; an invalid one is ignored, not an error."""
        self.is_valid()
        cleaned = getattr(self, "cleaned_data", {})
        return {name: cleaned[name] for name in ("q", "relation", "split") if cleaned.get(name)}


class CorpusExportForm(forms.Form):
    format = forms.ChoiceField(choices=EXPORT_FORMAT_CHOICES, initial="jsonl")
    relations = forms.MultipleChoiceField(
        required=False,
        help_text="None selected: every relation.",
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )
    split = forms.ChoiceField(required=False)
    min_score = forms.FloatField(
        required=False,
        label="Min score",
        help_text="Critic score; empty keeps unscored triples.",
        widget=forms.NumberInput(attrs={"step": "any", "placeholder": "e.g. 0.5"}),
    )

    def __init__(self, *args, relations: list[str], splits: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["relations"].choices = [(r, r) for r in relations]
        self.fields["split"].choices = [("", "All splits")] + [(s, s) for s in splits]


class RelationForm(forms.Form):
    """Input for services.relation_create, which does the model validation."""

    name = forms.CharField(
        max_length=_max_length(Relation, "name"), help_text="e.g. xHobby (letters, digits, _)."
    )
    category = forms.CharField(required=False, max_length=_max_length(Relation, "category"))
    sentence_template = forms.CharField(
        max_length=_max_length(Relation, "sentence_template"),
        help_text="How people read a triple, with {head} and {tail}.",
        widget=forms.TextInput(attrs={"placeholder": "{head}. PersonX enjoys: {tail}"}),
    )
    prompt_template = forms.CharField(
        max_length=_max_length(Relation, "prompt_template"),
        help_text="What the teacher is asked, with {head}.",
        widget=forms.TextInput(attrs={"placeholder": "{head}. PersonX enjoys"}),
    )
    verbalization = forms.CharField(
        max_length=_max_length(Relation, "verbalization"),
        help_text="Words joining head and tail in the critic's input.",
    )
    description = forms.CharField(
        required=False,
        help_text="Guideline shown to annotators.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
