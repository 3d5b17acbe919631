"""Annotation pages, a module per role: `judging` (annotators), `campaigns` (researchers)."""

from .campaigns import (
    AnnotatorStandingView,
    CampaignCreateView,
    CampaignDetailView,
    CampaignExportView,
    CampaignGrowView,
    CampaignListView,
    CampaignLiveView,
    CampaignRecomputeView,
    CampaignStatusView,
)
from .judging import ANSWERS, NOTHING_LEFT, AnnotatorRequiredMixin, JudgeView, home

__all__ = [
    "ANSWERS",
    "NOTHING_LEFT",
    "AnnotatorRequiredMixin",
    "AnnotatorStandingView",
    "CampaignCreateView",
    "CampaignDetailView",
    "CampaignExportView",
    "CampaignGrowView",
    "CampaignListView",
    "CampaignLiveView",
    "CampaignRecomputeView",
    "CampaignStatusView",
    "JudgeView",
    "home",
]
