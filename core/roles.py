"""The two roles are Django groups; a superuser counts as a researcher."""

from __future__ import annotations

from django.contrib.auth.mixins import UserPassesTestMixin
from rest_framework.permissions import BasePermission

RESEARCHER = "researcher"
ANNOTATOR = "annotator"
ROLES = (RESEARCHER, ANNOTATOR)


def _roles(user) -> frozenset[str]:
    """The user's role groups, read once per user object (so once per request)."""
    roles = getattr(user, "_skd_roles", None)
    if roles is None:
        roles = frozenset(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user._skd_roles = roles
    return roles


def is_researcher(user) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return RESEARCHER in _roles(user)


def is_annotator(user) -> bool:
    return user.is_authenticated and ANNOTATOR in _roles(user)


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


class IsAnnotatorOrResearcher(BasePermission):
    message = "This resource is for annotators and researchers."

    def has_permission(self, request, view) -> bool:
        return is_annotator(request.user) or is_researcher(request.user)
