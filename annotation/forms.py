from __future__ import annotations

from django import forms

from core.limits import bounds
from corpora.selectors import corpus_list

from .limits import CAMPAIGN_LIMITS, CAMPAIGN_NAME_MAX
from .models import Campaign, JudgmentValue

MAX_ID = 2**63 - 1


class JudgmentForm(forms.Form):
    """One press on the annotator page: a value for the leased item, a skip or an undo."""

    ACTIONS = (("submit", "submit"), ("skip", "skip"), ("undo", "undo"))

    action = forms.ChoiceField(choices=ACTIONS, required=False)
    assignment = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        error_messages={"invalid": "That item was not given to you."},
    )
    value = forms.TypedChoiceField(
        choices=JudgmentValue.choices,
        coerce=int,
        required=False,
        empty_value=None,
        error_messages={"invalid_choice": "Choose one of the answers (keys 1, 2, 3, 4 or 0)."},
    )
    flagged = forms.BooleanField(required=False)

    def clean(self):
        cleaned = super().clean()
        action = cleaned.get("action") or "submit"
        cleaned["action"] = action
        if action in ("submit", "skip") and not cleaned.get("assignment"):
            raise forms.ValidationError("That item is no longer yours; here is the next one.")
        if action == "submit" and cleaned.get("value") is None:
            raise forms.ValidationError("Choose one of the answers (keys 1, 2, 3, 4 or 0).")
        return cleaned

    def first_error(self) -> str:
        for errors in self.errors.values():
            return errors[0]
        return "That request was not understood."


class CampaignCreateForm(forms.Form):
    """Input for services.campaign_create, which does the model validation too."""

    corpus = forms.ModelChoiceField(queryset=corpus_list(), empty_label=None)
    name = forms.CharField(max_length=CAMPAIGN_NAME_MAX)
    size = forms.IntegerField(
        **bounds(CAMPAIGN_LIMITS, "size"),
        help_text="Triples to sample from the corpus. Sampling runs while you wait (about "
        "100,000 items take seconds); for very large campaigns use the command line: "
        "manage.py create_campaign.",
    )
    sampling = forms.ChoiceField(
        choices=Campaign.Sampling.choices, initial=Campaign.Sampling.UNIFORM
    )
    purpose = forms.TypedChoiceField(
        choices=Campaign.Purpose.choices,
        initial=Campaign.Purpose.LEARNING,
        required=False,
        empty_value=Campaign.Purpose.LEARNING,
        help_text="Audit labels measure the critic (uniform or stratified sampling, weighted) "
        "and are never trained on.",
    )
    judgments_per_item = forms.IntegerField(
        label="Judgments per item", initial=3, **bounds(CAMPAIGN_LIMITS, "judgments_per_item")
    )
    gold_share = forms.FloatField(
        initial=0.1,
        **bounds(CAMPAIGN_LIMITS, "gold_share"),
        help_text="Share of the items an annotator is shown that are gold (0 for none).",
        widget=forms.NumberInput(attrs={"step": "any"}),
    )
    gold_threshold = forms.FloatField(
        initial=0.7,
        **bounds(CAMPAIGN_LIMITS, "gold_threshold"),
        help_text="An annotator whose gold accuracy falls below this is paused.",
        widget=forms.NumberInput(attrs={"step": "any"}),
    )
    gold_min_answers = forms.IntegerField(
        initial=5,
        **bounds(CAMPAIGN_LIMITS, "gold_min_answers"),
        help_text="Gold answers needed before an annotator can be paused.",
    )
    lease_seconds = forms.IntegerField(
        label="Lease (seconds)",
        initial=600,
        **bounds(CAMPAIGN_LIMITS, "lease_seconds"),
        help_text="How long an item stays reserved for the annotator it was shown to.",
    )
    instructions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Shown to annotators above the triples (collapsed).",
    )
    gold_reference = forms.FileField(
        required=False,
        label="Gold reference file",
        help_text="Human-written triples (ATOMIC TSV, JSONL, CSV): half the gold items come "
        "from it, the other half are its tails swapped between heads.",
    )
    seed = forms.IntegerField(
        required=False,
        **bounds(CAMPAIGN_LIMITS, "seed"),
        help_text="Same seed, same sample. Empty: a random one.",
    )


class CampaignGrowForm(forms.Form):
    size = forms.IntegerField(**bounds(CAMPAIGN_LIMITS, "size"), label="Add items")


class CampaignStatusForm(forms.Form):
    status = forms.ChoiceField(choices=Campaign.Status.choices)


class AnnotatorStandingForm(forms.Form):
    action = forms.ChoiceField(choices=(("pause", "pause"), ("reinstate", "reinstate")))
