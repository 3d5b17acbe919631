"""The two roles are Django groups; a superuser counts as a researcher."""

from __future__ import annotations

from django.contrib.auth.mixins import UserPassesTestMixin
from rest_framework.permissions import BasePermission

RESEARCHER = "researcher"
ANNOTATOR = "annotator"
ROLES = (RESEARCHER, ANNOTATOR)


def is_researcher(user) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name=RESEARCHER).exists()


def is_annotator(user) -> bool:
    return user.is_authenticated and user.groups.filter(name=ANNOTATOR).exists()


class ResearcherRequiredMixin(UserPassesTestMixin):
    """Pages for researchers only: anonymous users go to login, others get 403."""

    raise_exception = False

    def test_func(self) -> bool:
        return is_researcher(self.request.user)

    def handle_no_permission(self):
        if self.request.user.is_authenticated:
            self.raise_exception = True
        return super().handle_no_permission()


class IsResearcher(BasePermission):
    message = "This resource is for researchers."

    def has_permission(self, request, view) -> bool:
        return is_researcher(request.user)
