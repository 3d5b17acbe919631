"""Forms of the review page: its filters (read from GET) and an item's adjudication."""

from __future__ import annotations

from django import forms

from core.limits import bounds

from .models import JudgmentValue
from .review import ADJUDICATED, FILTERS, REVIEW_LIMITS, ReviewFilter

_DEFAULTS = ReviewFilter()


def _threshold(label: str, name: str) -> forms.FloatField:
    return forms.FloatField(
        required=False,
        label=label,
        **bounds(REVIEW_LIMITS, name),
        widget=forms.NumberInput(attrs={"step": "0.05", "class": "narrow"}),
    )


class ReviewFilterForm(forms.Form):
    filter = forms.ChoiceField(choices=list(FILTERS.items()), required=False, label="Show")
    adjudicated = forms.ChoiceField(choices=list(ADJUDICATED.items()), required=False)
    agreement_below = _threshold("Agreement below", "agreement_below")
    critic_high = _threshold("Critic at least", "critic_high")
    critic_low = _threshold("Critic at most", "critic_low")

    def review_filter(self) -> ReviewFilter:
        """The filter asked for (call after is_valid()); empty thresholds take defaults."""
        data = self.cleaned_data

        def value(name: str) -> float:
            found = data.get(name)
            return getattr(_DEFAULTS, name) if found is None else found

        return ReviewFilter(
            kind=data.get("filter") or "",
            adjudicated=data.get("adjudicated") or "",
            agreement_below=value("agreement_below"),
            critic_high=value("critic_high"),
            critic_low=value("critic_low"),
        )

    def first_error(self) -> str:
        for name, errors in self.errors.items():
            label = self.fields[name].label if name in self.fields else ""
            return f"{label}: {errors[0]}" if label else errors[0]
        return ""


class AdjudicationForm(forms.Form):
    """A researcher's final label for an item, or `clear` to give the crowd's back."""

    value = forms.TypedChoiceField(
        choices=JudgmentValue.choices,
        coerce=int,
        required=False,
        empty_value=None,
        error_messages={"invalid_choice": "Choose a value on the scale, or clear."},
    )
    clear = forms.BooleanField(required=False)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("clear"):
            cleaned["value"] = None
        elif cleaned.get("value") is None and "value" not in self.errors:
            raise forms.ValidationError("Choose a value on the scale, or clear.")
        return cleaned

    def first_error(self) -> str:
        for errors in self.errors.values():
            return errors[0]
        return ""
