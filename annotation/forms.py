from __future__ import annotations

from django import forms

from core.limits import bounds
from corpora.selectors import corpus_list

from .limits import CAMPAIGN_LIMITS, CAMPAIGN_NAME_MAX
from .models import Campaign, JudgmentValue

MAX_ID = 2**63 - 1


class JudgmentForm(forms.Form):
    """One press on the annotator page: a value for the leased item, a skip or an undo."""

    ACTIONS = (
        ("submit", "submit"),
        ("skip", "skip"),
        ("undo", "undo"),
        ("train", "a training answer"),
        ("next", "next"),
    )

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
    training_item = forms.IntegerField(required=False, min_value=1, max_value=MAX_ID)

    def clean(self):
        cleaned = super().clean()
        action = cleaned.get("action") or "submit"
        cleaned["action"] = action
        if action in ("submit", "skip") and not cleaned.get("assignment"):
            raise forms.ValidationError("That item is no longer yours; here is the next one.")
        if action == "train" and not cleaned.get("training_item"):
            raise forms.ValidationError("That training item is not part of your current round.")
        if action in ("submit", "train") and cleaned.get("value") is None:
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
    items_per_session = forms.IntegerField(
        required=False,
        label="Items per session",
        **bounds(CAMPAIGN_LIMITS, "items_per_session"),
        help_text="After this many judgments an annotator from a join link gets the "
        "completion code. Empty: no sessions.",
    )
    training_size = forms.IntegerField(
        required=False,
        label="Training items",
        initial=0,
        **bounds(CAMPAIGN_LIMITS, "training_size"),
        help_text="Gold items each newcomer answers first, shown the expected answer and "
        "its reason after each (0: no training).",
    )
    qualification_threshold = forms.FloatField(
        required=False,
        initial=0.8,
        **bounds(CAMPAIGN_LIMITS, "qualification_threshold"),
        help_text="Share of a training round's answers that must be right before real items.",
        widget=forms.NumberInput(attrs={"step": "any"}),
    )
    training_tries = forms.IntegerField(
        required=False,
        label="Training rounds allowed",
        initial=2,
        **bounds(CAMPAIGN_LIMITS, "training_tries"),
        help_text="Rounds a newcomer may take; who fails them all is paused.",
    )
    straight_line_run = forms.IntegerField(
        required=False,
        label="Straight-lining run",
        initial=15,
        **bounds(CAMPAIGN_LIMITS, "straight_line_run"),
        help_text="The same answer this many times in a row pauses an annotator.",
    )
    speed_floor = forms.FloatField(
        required=False,
        initial=0.25,
        **bounds(CAMPAIGN_LIMITS, "speed_floor"),
        help_text="A median time per judgment below this share of the crowd's median "
        "pauses an annotator (0: never).",
        widget=forms.NumberInput(attrs={"step": "any"}),
    )

    # Left empty, these take their defaults (forms and scripts made before them still post).
    DEFAULTED = (
        "training_size",
        "qualification_threshold",
        "training_tries",
        "straight_line_run",
        "speed_floor",
    )

    def clean(self):
        cleaned = super().clean()
        for name in self.DEFAULTED:
            if name in cleaned and cleaned[name] is None:
                cleaned[name] = self.fields[name].initial
        return cleaned


class CampaignGrowForm(forms.Form):
    size = forms.IntegerField(**bounds(CAMPAIGN_LIMITS, "size"), label="Add items")


class CampaignStatusForm(forms.Form):
    status = forms.ChoiceField(choices=Campaign.Status.choices)


class AnnotatorStandingForm(forms.Form):
    action = forms.ChoiceField(choices=(("pause", "pause"), ("reinstate", "reinstate")))
