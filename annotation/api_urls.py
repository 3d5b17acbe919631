from django.urls import path

from . import apis, judging_apis, review_apis

urlpatterns = [
    path("campaigns/", apis.CampaignListApi.as_view(), name="api-campaign-list"),
    path("campaigns/open/", judging_apis.OpenCampaignListApi.as_view(), name="api-campaign-open"),
    path("campaigns/<int:pk>/", apis.CampaignDetailApi.as_view(), name="api-campaign-detail"),
    path(
        "campaigns/<int:pk>/aggregate/",
        apis.CampaignAggregateApi.as_view(),
        name="api-campaign-aggregate",
    ),
    path(
        "campaigns/<int:pk>/judgments/",
        apis.CampaignJudgmentsApi.as_view(),
        name="api-campaign-judgments",
    ),
    path(
        "campaigns/<int:pk>/review/",
        review_apis.CampaignReviewApi.as_view(),
        name="api-campaign-review",
    ),
    path(
        "items/<int:pk>/adjudication/",
        review_apis.ItemAdjudicationApi.as_view(),
        name="api-item-adjudication",
    ),
    path(
        "campaigns/<int:pk>/next/",
        judging_apis.AssignmentNextApi.as_view(),
        name="api-assignment-next",
    ),
    path(
        "campaigns/<int:pk>/undo/", judging_apis.JudgmentUndoApi.as_view(), name="api-judgment-undo"
    ),
    path(
        "assignments/<int:pk>/judgment/",
        judging_apis.JudgmentSubmitApi.as_view(),
        name="api-judgment-submit",
    ),
    path(
        "assignments/<int:pk>/skip/",
        judging_apis.AssignmentSkipApi.as_view(),
        name="api-assignment-skip",
    ),
]
