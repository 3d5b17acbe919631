from django import forms

from annotation.limits import CAMPAIGN_LIMITS, CAMPAIGN_NAME_MAX
from annotation.models import Campaign
from core.limits import bounds, form_fields_bound
from corpora.exporting import EXPORT_FORMATS

from .limits import CONFIG_LIMITS, PRESET_LIMITS, PRESET_NAME_MAX
from .models import CriticConfig

NAME_SWAP_CHOICES = [
    ("", "each tier's default (on for the cross-encoder, off for the fast tier)"),
    ("on", "on"),
    ("off", "off"),
]


class CriticConfigForm(forms.ModelForm):
    name_swap = forms.TypedChoiceField(
        choices=NAME_SWAP_CHOICES,
        coerce=lambda value: value == "on",
        empty_value=None,
        required=False,
        help_text=CriticConfig._meta.get_field("name_swap").help_text,
    )

    class Meta:
        model = CriticConfig
        fields = [
            "tier",
            "encoder",
            "auto_retrain",
            "retrain_every",
            "name_swap",
            "name_draws",
            "label_weighting",
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        form_fields_bound(self.fields, CONFIG_LIMITS)
        # The model holds True / False / None; the choice is "on" / "off" / "".
        swap = self.initial.get("name_swap")
        if swap is None or isinstance(swap, bool):
            self.initial["name_swap"] = {True: "on", False: "off"}.get(swap, "")


class ThresholdForm(forms.Form):
    version = forms.IntegerField(min_value=1)
    threshold = forms.FloatField(min_value=0.0, max_value=1.0)


def version_choices(versions) -> list[tuple[int, str]]:
    """Versions as people pick them: number, labels trained on, date, and which is active."""
    return [
        (
            v.number,
            f"{v.label} · {v.label_count:,} labels · {v.created_at:%Y-%m-%d}"
            + (" (active)" if v.is_active else ""),
        )
        for v in versions
    ]


class TargetPrecisionForm(forms.Form):
    version = forms.TypedChoiceField(coerce=int, choices=())
    target = forms.FloatField(
        min_value=0.0, max_value=1.0, initial=0.9, widget=forms.NumberInput(attrs={"step": "0.01"})
    )
    per_relation = forms.BooleanField(required=False, label="A threshold per relation")

    def __init__(self, *args, versions, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = version_choices(versions)


class PresetForm(forms.Form):
    version = forms.IntegerField(min_value=1)
    name = forms.CharField(max_length=PRESET_NAME_MAX)
    threshold = forms.FloatField(**bounds(PRESET_LIMITS, "threshold"))
    relation_thresholds = forms.JSONField(required=False)
    target_precision = forms.FloatField(required=False, **bounds(PRESET_LIMITS, "target_precision"))
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class PresetExportForm(forms.Form):
    format = forms.ChoiceField(choices=[(f, f) for f in EXPORT_FORMATS], initial="jsonl")


class LearnForm(forms.Form):
    """Input for services.learning.learning_campaign_create: a learning campaign drawn near
    a preset's line or where the critic and the crowd disagree."""

    sampling = forms.ChoiceField(
        choices=[
            (Campaign.Sampling.NEAR_LINE, "near a preset's line (per relation)"),
            (Campaign.Sampling.DISAGREEMENT, "where the critic and the crowd disagree most"),
        ],
        initial=Campaign.Sampling.NEAR_LINE,
    )
    preset = forms.ModelChoiceField(
        queryset=None,
        required=False,
        empty_label="(none)",
        help_text="Near the line: the preset whose threshold(s) to draw around.",
    )
    name = forms.CharField(max_length=CAMPAIGN_NAME_MAX)
    size = forms.IntegerField(initial=500, **bounds(CAMPAIGN_LIMITS, "size"))
    judgments_per_item = forms.IntegerField(
        label="Judgments per item", initial=3, **bounds(CAMPAIGN_LIMITS, "judgments_per_item")
    )

    def __init__(self, *args, presets, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["preset"].queryset = presets
