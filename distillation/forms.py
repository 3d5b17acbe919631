"""Forms for student runs and their evaluations (inputs for distillation.services)."""

from __future__ import annotations

from django import forms

from core.limits import bounds, form_fields_bound
from corpora.models import Corpus, Relation
from critic.models import FilterPreset
from generation.forms import head_lines

from .demo import DEMO_BASE_MODEL
from .errors import DistillationError
from .limits import DEVICES, EVALUATION_LIMITS, RUN_LIMITS, SEND_LIMITS, decoding_check
from .models import HYPERPARAMETERS, StudentEvaluation, StudentRun

DEVICE_LABELS = {"auto": "auto (GPU when there is one)", "cpu": "CPU", "cuda": "CUDA GPU"}
DEVICE_CHOICES = tuple((device, DEVICE_LABELS[device]) for device in DEVICES)
HEADS_FROM_CHOICES = (("split", "Heads of a split of the run's corpus"), ("list", "Heads I list"))


def preset_choices() -> list:
    """'' (the whole corpus), then every preset, grouped by its corpus (optgroups)."""
    groups: dict[str, list[tuple[str, str]]] = {}
    presets = FilterPreset.objects.select_related("corpus", "version").order_by(
        "corpus__name", "name"
    )
    for preset in presets:
        label = f"{preset.name} (critic v{preset.version.number}, ≥ {preset.threshold:g})"
        groups.setdefault(preset.corpus.name, []).append((str(preset.pk), label))
    return [("", "The whole corpus (no cut)"), *groups.items()]


class StudentRunForm(forms.ModelForm):
    """Input for services.runs.student_run_create: a corpus, its whole or a preset's cut, a base
    model and the hyperparameters. A preset alone is enough: it names its corpus."""

    preset = forms.ChoiceField(
        required=False,
        label="Training data",
        help_text="A filter preset's cut of the corpus (saved on the critic dashboard), or "
        "the whole corpus.",
    )
    device = forms.ChoiceField(choices=DEVICE_CHOICES, initial="auto")
    seed = forms.IntegerField(initial=0, **bounds(RUN_LIMITS, "seed"))

    class Meta:
        model = StudentRun
        fields = [
            "name",
            "corpus",
            "preset",
            "base_model",
            "train_split",
            "val_split",
            *HYPERPARAMETERS,
        ]
        labels = {
            "base_model": "Base model",
            "train_split": "Train split",
            "val_split": "Validation split",
            "learning_rate": "Learning rate",
            "batch_size": "Batch size",
            "grad_accum": "Gradient accumulation steps",
            "max_length": "Max length (tokens)",
            "bf16": "bf16",
            "max_steps": "Max steps",
            "save_every": "Checkpoint every (steps)",
        }
        widgets = {
            "base_model": forms.TextInput(
                attrs={"placeholder": "gpt2-xl or /models/t5-base", "autocomplete": "off"}
            ),
            "train_split": forms.TextInput(attrs={"list": "split-names"}),
            "val_split": forms.TextInput(attrs={"list": "split-names", "placeholder": "none"}),
            "epochs": forms.NumberInput(attrs={"step": "any"}),
            "learning_rate": forms.NumberInput(attrs={"step": "any"}),
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        form_fields_bound(self.fields, RUN_LIMITS)
        self.fields["preset"].choices = preset_choices()
        corpus = self.fields["corpus"]
        corpus.queryset = Corpus.objects.order_by("name")
        corpus.required = False
        corpus.help_text = "Not needed when a preset is chosen: the preset's corpus is used."
        if (DEMO_BASE_MODEL / "config.json").exists():
            self.fields[
                "base_model"
            ].help_text += (
                f" The demo's tiny untrained GPT-2, to try the pipeline: {DEMO_BASE_MODEL}"
            )
            # Filled in, as the hint names it: a first run can start without looking it up.
            self.initial.setdefault("base_model", str(DEMO_BASE_MODEL))

    def clean_preset(self) -> FilterPreset | None:
        value = self.cleaned_data.get("preset")
        if not value:
            return None
        preset = FilterPreset.objects.select_related("corpus", "version").filter(pk=value).first()
        if preset is None:
            raise forms.ValidationError("That preset no longer exists.")
        return preset

    def clean(self) -> dict:
        cleaned = super().clean()
        preset, corpus = cleaned.get("preset"), cleaned.get("corpus")
        if preset is not None and corpus is None:
            cleaned["corpus"] = preset.corpus
        elif preset is not None and preset.corpus_id != corpus.pk:
            self.add_error(
                "preset",
                f"Preset '{preset.name}' cuts corpus '{preset.corpus.name}', not '{corpus.name}'.",
            )
        elif preset is None and corpus is None and "corpus" not in self.errors:
            self.add_error("corpus", "Choose a corpus, or a preset of one.")
        return cleaned

    def run_arguments(self) -> dict:
        """Keyword arguments for services.runs.student_run_create (after is_valid)."""
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class EvaluationForm(forms.ModelForm):
    """Input for services.evaluations.evaluation_create: heads of a split or a pasted list,
    relations (none chosen: those the run trained on) and the decoding."""

    heads_from = forms.ChoiceField(
        label="Heads", choices=HEADS_FROM_CHOICES, initial="split", widget=forms.RadioSelect
    )
    heads = forms.CharField(
        required=False,
        label="Heads, one a line",
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "PersonX goes fishing"}),
    )
    relations = forms.ModelMultipleChoiceField(
        queryset=Relation.objects.order_by("name"),
        required=False,
        to_field_name="name",
        widget=forms.SelectMultiple(attrs={"size": 6}),
        help_text="None chosen: the relations of the training data.",
    )
    seed = forms.IntegerField(initial=0, **bounds(EVALUATION_LIMITS, "seed"))

    class Meta:
        model = StudentEvaluation
        fields = [
            "heads_split",
            "heads",
            "max_heads",
            "relations",
            "decoding",
            "n_per_pair",
            "num_beams",
            "max_new_tokens",
            "temperature",
            "top_p",
            "seed",
        ]
        labels = {
            "heads_split": "Split",
            "max_heads": "Max heads",
            "n_per_pair": "Outputs per head and relation",
            "num_beams": "Beams",
            "max_new_tokens": "Max new tokens",
            "top_p": "Top p",
        }
        widgets = {
            "heads_split": forms.TextInput(attrs={"list": "split-names"}),
            "temperature": forms.NumberInput(attrs={"step": "any"}),
            "top_p": forms.NumberInput(attrs={"step": "any"}),
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        form_fields_bound(self.fields, EVALUATION_LIMITS)

    def clean_heads(self) -> str:
        return "\n".join(head_lines(self.cleaned_data.get("heads") or ""))

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("heads_from") == "list":
            if not cleaned.get("heads") and "heads" not in self.errors:
                self.add_error("heads", "List at least one head.")
        else:
            cleaned["heads"] = ""
        try:
            decoding_check(
                decoding=cleaned.get("decoding"),
                temperature=cleaned.get("temperature"),
                top_p=cleaned.get("top_p"),
            )
        except DistillationError as exc:
            self.add_error(exc.field, exc.message)
        return cleaned

    def evaluation_arguments(self) -> dict:
        """Keyword arguments for services.evaluations.evaluation_create (after is_valid)."""
        data = self.cleaned_data
        return {
            "heads_split": data["heads_split"],
            "heads": data["heads"].splitlines() if data["heads"] else None,
            "max_heads": data["max_heads"],
            "relations": list(data["relations"]),
            "decoding": data["decoding"],
            "n_per_pair": data["n_per_pair"],
            "num_beams": data["num_beams"],
            "max_new_tokens": data["max_new_tokens"],
            "temperature": data["temperature"],
            "top_p": data["top_p"],
            "seed": data["seed"],
        }


class EvaluationSendForm(forms.Form):
    """Input for services.outputs.evaluation_send_to_annotation: how many outputs, how many
    judgments each, the gold share, and whether the teacher's tails are mixed in."""

    size = forms.IntegerField(
        required=False,
        label="Outputs to judge",
        help_text="Empty: all of them. With the teacher mixed in, as many of its tails again "
        "at most.",
        **bounds(SEND_LIMITS, "size"),
    )
    judgments_per_item = forms.IntegerField(
        initial=3, label="Judgments per item (k)", **bounds(SEND_LIMITS, "judgments_per_item")
    )
    gold_share = forms.FloatField(
        initial=0.1,
        label="Gold share",
        widget=forms.NumberInput(attrs={"step": "any"}),
        **bounds(SEND_LIMITS, "gold_share"),
    )
    with_teacher = forms.BooleanField(
        required=False,
        initial=True,
        label="Mix in the teacher's tails for the same heads and relations",
        help_text="Shuffled together under a neutral name, so people judge both blind.",
    )

    def send_arguments(self) -> dict:
        """Keyword arguments for evaluation_send_to_annotation (after is_valid)."""
        return {name: self.cleaned_data[name] for name in self.fields}
