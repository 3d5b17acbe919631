"""The join page, at /join/<token>/ and named "join" without a namespace: the URL a
researcher pastes into a Prolific or MTurk study."""

from django.urls import path

from .views.join import JoinView

urlpatterns = [
    path("<str:token>/", JoinView.as_view(), name="join"),
]
