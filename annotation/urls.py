from django.urls import path

from . import views
from .views import review
from .views.annotators import (
    AnnotatorActiveView,
    AnnotatorInviteView,
    AnnotatorListView,
    CampaignPayView,
)
from .views.join import JoinLinkCreateView, JoinLinkRevokeView

app_name = "annotation"

urlpatterns = [
    path("", views.CampaignListView.as_view(), name="campaign_list"),
    path("new/", views.CampaignCreateView.as_view(), name="campaign_create"),
    path("annotators/", AnnotatorListView.as_view(), name="annotator_list"),
    path("annotators/invite/", AnnotatorInviteView.as_view(), name="annotator_invite"),
    path(
        "annotators/<int:user_pk>/active/", AnnotatorActiveView.as_view(), name="annotator_active"
    ),
    path("<int:pk>/pay.csv", CampaignPayView.as_view(), name="campaign_pay"),
    path("<int:pk>/", views.CampaignDetailView.as_view(), name="campaign_detail"),
    path("<int:pk>/live/", views.CampaignLiveView.as_view(), name="campaign_live"),
    path("<int:pk>/recompute/", views.CampaignRecomputeView.as_view(), name="campaign_recompute"),
    path("<int:pk>/grow/", views.CampaignGrowView.as_view(), name="campaign_grow"),
    path("<int:pk>/status/", views.CampaignStatusView.as_view(), name="campaign_status"),
    path(
        "<int:pk>/annotators/<int:user_pk>/",
        views.AnnotatorStandingView.as_view(),
        name="annotator_standing",
    ),
    path("<int:pk>/export/", views.CampaignExportView.as_view(), name="campaign_export"),
    path("<int:pk>/judge/", views.JudgeView.as_view(), name="judge"),
    path("<int:pk>/review/", review.ReviewView.as_view(), name="campaign_review"),
    path(
        "<int:pk>/review/items/<int:item_pk>/adjudication/",
        review.ItemAdjudicateView.as_view(),
        name="item_adjudicate",
    ),
    path("<int:pk>/links/", JoinLinkCreateView.as_view(), name="join_link_create"),
    path(
        "<int:pk>/links/<int:link_pk>/revoke/",
        JoinLinkRevokeView.as_view(),
        name="join_link_revoke",
    ),
]
