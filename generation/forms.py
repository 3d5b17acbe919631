"""Forms for teachers, few-shot pools and generation runs (inputs for generation.teaching)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from django import forms
from django.core.files.uploadedfile import UploadedFile

from core.limits import bounds
from corpora.models import MAX_TEXT_LENGTH, Relation
from corpora.selectors import corpus_list

from .limits import RUN_LIMITS
from .models import FewShotPool, Teacher

MAX_LINE_ERRORS = 5
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
ENV_NAME_ERROR = (
    "Give the name of the environment variable that holds the key (e.g. OPENAI_API_KEY: "
    "capital letters, digits and underscores), never the key itself."
)
HEADS_FROM_CHOICES = (
    ("list", "Heads I list"),
    ("corpus", "The heads of a corpus"),
    ("events", "New events, written by the teacher"),
)


def is_env_name(value: str) -> bool:
    return bool(ENV_NAME.match(value)) and len(value) <= 100


def relation_names() -> set[str]:
    return set(Relation.objects.values_list("name", flat=True))


def example_lines(lines: Iterable[str | bytes], *, relations: set[str]) -> list[str]:
    """Checked ATOMIC TSV lines, each as ``head<TAB>relation<TAB>tail`` (a head alone is a
    seed event and gets empty relation and tail). Blank lines are skipped; a
    ValidationError names the first bad lines."""
    rows: list[str] = []
    errors: list[str] = []
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                errors.append(f"line {number}: not UTF-8 text")
                continue
        line = raw.rstrip("\r\n")
        if number == 1:
            line = line.lstrip("\ufeff")
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split("\t")]
        if len(parts) == 1:
            head, relation, tail = parts[0], "", ""
        elif len(parts) == 3:
            head, relation, tail = parts
        else:
            errors.append(
                f"line {number}: expected head<TAB>relation<TAB>tail or a head alone, "
                f"found {len(parts)} fields"
            )
            continue
        if not head:
            errors.append(f"line {number}: the head is empty")
        elif len(head) > MAX_TEXT_LENGTH:
            errors.append(f"line {number}: the head is longer than {MAX_TEXT_LENGTH} characters")
        if relation and relation not in relations:
            errors.append(f"line {number}: unknown relation '{relation}'")
        if tail and not relation:
            errors.append(f"line {number}: a tail needs a relation")
        if len(tail) > MAX_TEXT_LENGTH:
            errors.append(f"line {number}: the tail is longer than {MAX_TEXT_LENGTH} characters")
        rows.append(f"{head}\t{relation}\t{tail}")
    if errors:
        more = len(errors) - MAX_LINE_ERRORS
        raise forms.ValidationError(
            errors[:MAX_LINE_ERRORS] + ([f"… and {more} more"] if more > 0 else [])
        )
    if not rows:
        raise forms.ValidationError("No examples: every line was empty.")
    return rows


def head_lines(text: str) -> list[str]:
    """One head per line, blank lines skipped, duplicates kept once."""
    heads: dict[str, None] = {}
    errors = []
    for number, line in enumerate(text.splitlines(), start=1):
        head = line.strip()
        if len(head) > MAX_TEXT_LENGTH:
            errors.append(f"line {number}: longer than {MAX_TEXT_LENGTH} characters")
        elif head:
            heads[head] = None
    if errors:
        raise forms.ValidationError(errors[:MAX_LINE_ERRORS])
    return list(heads)


class TeacherForm(forms.ModelForm):
    """Input for teaching.teacher_create. The API key stays in the environment: the form
    only takes the name of the variable."""

    class Meta:
        model = Teacher
        fields = [
            "name",
            "backend",
            "base_url",
            "model",
            "endpoint",
            "api_key_env",
            "concurrency",
            "timeout",
            "max_answer_mb",
            "give_up_after",
            "temperature",
            "top_p",
            "max_tokens",
            "device",
            "dtype",
            "prompt_price_per_1k",
            "completion_price_per_1k",
        ]
        labels = {
            "base_url": "Base URL",
            "timeout": "Timeout (seconds)",
            "max_answer_mb": "Largest answer (MB)",
            "give_up_after": "Give up after failures in a row",
            "api_key_env": "API key variable",
            "top_p": "Top p",
            "prompt_price_per_1k": "Prompt price per 1k tokens",
            "completion_price_per_1k": "Completion price per 1k tokens",
        }
        widgets = {
            "base_url": forms.TextInput(attrs={"placeholder": "http://127.0.0.1:8080/v1"}),
            "api_key_env": forms.TextInput(
                attrs={"placeholder": "OPENAI_API_KEY", "autocomplete": "off"}
            ),
            "timeout": forms.NumberInput(attrs={"step": "any"}),
            "max_answer_mb": forms.NumberInput(attrs={"step": "any"}),
            "temperature": forms.NumberInput(attrs={"step": "any"}),
            "top_p": forms.NumberInput(attrs={"step": "any"}),
            "prompt_price_per_1k": forms.NumberInput(attrs={"step": "any"}),
            "completion_price_per_1k": forms.NumberInput(attrs={"step": "any"}),
        }

    # Settings a newcomer may leave as they are: left empty, they keep the model's default.
    OPTIONAL_WITH_DEFAULT = ("timeout", "max_answer_mb", "give_up_after")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in self.OPTIONAL_WITH_DEFAULT:
            self.fields[name].required = False

    def _clean_default(self, name: str):
        value = self.cleaned_data.get(name)
        return Teacher._meta.get_field(name).default if value is None else value

    def clean_timeout(self) -> float:
        return self._clean_default("timeout")

    def clean_max_answer_mb(self) -> float:
        return self._clean_default("max_answer_mb")

    def clean_give_up_after(self) -> int:
        return self._clean_default("give_up_after")

    def clean_api_key_env(self) -> str:
        value = self.cleaned_data.get("api_key_env", "")
        if value and not is_env_name(value):
            # Whatever was typed (perhaps a key) is not sent back to the browser.
            self.data = self.data.copy()
            self.data[self.add_prefix("api_key_env")] = ""
            raise forms.ValidationError(ENV_NAME_ERROR)
        return value

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("backend") == Teacher.Backend.OPENAI and not cleaned.get("base_url"):
            self.add_error("base_url", "The HTTP backend needs a base URL, e.g. …/v1.")
        return cleaned


class PoolForm(forms.ModelForm):
    class Meta:
        model = FewShotPool
        fields = ["name", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}


class PoolExamplesForm(forms.Form):
    """Examples pasted or uploaded as ATOMIC TSV; ``cleaned_data["lines"]`` holds them."""

    text = forms.CharField(
        required=False,
        strip=False,
        label="Paste lines",
        widget=forms.Textarea(
            attrs={"rows": 6, "placeholder": "PersonX goes fishing\txNeed\ta fishing rod"}
        ),
        help_text="head<TAB>relation<TAB>tail, one a line; a line with only a head adds a seed "
        "event. A tail of 'none' keeps only the head.",
    )
    file = forms.FileField(
        required=False, label="Or upload a TSV file", help_text="ATOMIC TSV, UTF-8."
    )

    def clean(self) -> dict:
        cleaned = super().clean()
        text, upload = cleaned.get("text") or "", cleaned.get("file")
        if not text.strip() and upload is None:
            raise forms.ValidationError("Paste some lines or choose a file.")
        field = "file" if upload is not None else "text"
        source: Iterable[str | bytes] = (
            _upload_lines(upload) if upload is not None else text.splitlines()
        )
        try:
            cleaned["lines"] = example_lines(source, relations=relation_names())
        except forms.ValidationError as error:
            self.add_error(field, error)
        return cleaned


def _upload_lines(upload: UploadedFile) -> Iterable[bytes]:
    upload.seek(0)
    return iter(upload)


class RunCreateForm(forms.Form):
    """Input for teaching.run_create: heads from a list, from a corpus, or written by the
    teacher (event prompts)."""

    teacher = forms.ModelChoiceField(queryset=Teacher.objects.all(), empty_label=None)
    pool = forms.ModelChoiceField(
        queryset=FewShotPool.objects.all(), empty_label=None, label="Few-shot pool"
    )
    corpus_name = forms.CharField(
        label="Output corpus",
        max_length=100,
        help_text="A new name, or an existing corpus: the triples are added to it.",
        widget=forms.TextInput(attrs={"list": "corpus-names", "autocomplete": "off"}),
    )
    relations = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple)
    heads_from = forms.ChoiceField(
        label="Heads",
        choices=HEADS_FROM_CHOICES,
        initial="list",
        widget=forms.RadioSelect,
    )
    heads = forms.CharField(
        required=False,
        label="Heads, one a line",
        widget=forms.Textarea(attrs={"rows": 6, "placeholder": "PersonX goes fishing"}),
    )
    source_corpus = forms.ModelChoiceField(
        queryset=corpus_list(),
        required=False,
        label="Corpus whose heads to use",
    )
    event_prompts = forms.IntegerField(
        required=False,
        min_value=1,  # choosing new events means asking for at least one
        max_value=RUN_LIMITS["event_prompts"][1],
        label="Event prompts",
        help_text="Requests for new events (a few each); their inferences follow.",
    )
    n_per_pair = forms.IntegerField(
        initial=5,
        **bounds(RUN_LIMITS, "n_per_pair"),
        label="Tails per head and relation",
    )
    k_examples = forms.IntegerField(
        initial=5, **bounds(RUN_LIMITS, "k_examples"), label="Few-shot examples per prompt"
    )
    seed = forms.IntegerField(initial=0, **bounds(RUN_LIMITS, "seed"))
    temperature = forms.FloatField(
        required=False,
        **bounds(RUN_LIMITS, "temperature"),
        widget=forms.NumberInput(attrs={"step": "any", "placeholder": "the teacher's"}),
    )
    top_p = forms.FloatField(
        required=False,
        **bounds(RUN_LIMITS, "top_p"),
        label="Top p",
        widget=forms.NumberInput(attrs={"step": "any", "placeholder": "the teacher's"}),
    )
    max_tokens = forms.IntegerField(
        required=False,
        **bounds(RUN_LIMITS, "max_tokens"),
        label="Max tokens",
        widget=forms.NumberInput(attrs={"placeholder": "the teacher's"}),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        relations = list(Relation.objects.values_list("name", "is_skd"))
        self.fields["relations"].choices = [(name, name) for name, _ in relations]
        self.fields["relations"].initial = [name for name, is_skd in relations if is_skd]

    def clean_heads(self) -> list[str]:
        return head_lines(self.cleaned_data.get("heads") or "")

    def clean(self) -> dict:
        cleaned = super().clean()
        heads_from = cleaned.get("heads_from")
        if heads_from != "list":
            cleaned["heads"] = []
        if heads_from != "corpus":
            cleaned["source_corpus"] = None
        if heads_from != "events":
            cleaned["event_prompts"] = None
        if heads_from == "list" and not cleaned.get("heads") and "heads" not in self.errors:
            self.add_error("heads", "List at least one head.")
        if heads_from == "corpus" and cleaned.get("source_corpus") is None:
            self.add_error("source_corpus", "Choose the corpus whose heads to use.")
        if heads_from == "events" and not cleaned.get("event_prompts"):
            self.add_error("event_prompts", "How many event prompts to send.")
        return cleaned

    def run_arguments(self) -> dict:
        """Keyword arguments for teaching.run_create (after is_valid)."""
        data = self.cleaned_data
        return {
            "teacher": data["teacher"],
            "pool": data["pool"],
            "corpus_name": data["corpus_name"],
            "relations": list(data["relations"]),
            "heads": data["heads"],
            "source_corpus": data["source_corpus"],
            "event_prompts": data["event_prompts"] or 0,
            "n_per_pair": data["n_per_pair"],
            "k_examples": data["k_examples"],
            "seed": data["seed"],
            "temperature": data["temperature"],
            "top_p": data["top_p"],
            "max_tokens": data["max_tokens"],
        }
