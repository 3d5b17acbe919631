"""One application error, mapped once per door: the API's status and located message,
the page's rendered message, the CLI's CommandError."""

import pytest
from django.core.management.base import CommandError

from core.errors import AppError, Conflict
from core.handlers import AppCommand

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.errors_urls")]


def test_the_api_answers_an_app_error_with_its_status_message_and_field(client):
    response = client.post("/api/")
    assert response.status_code == 409
    assert response.json() == {
        "detail": "The campaign is closed.",
        "code": "conflict",
        "field": "campaign",
    }


def test_a_page_renders_an_app_error_with_its_status(client):
    response = client.get("/page/")
    assert response.status_code == 409
    assert "The campaign is closed." in response.text and "<html" in response.text.lower()
    fragment = client.get("/page/", headers={"HX-Request": "true"})
    assert fragment.status_code == 409
    assert "The campaign is closed." in fragment.text and "<html" not in fragment.text.lower()


def test_a_command_ends_on_an_app_error_as_on_a_command_error():
    class Command(AppCommand):
        def handle(self, *args, **options):
            raise AppError("Corpus 'x' has no preset named 'y'.", field="preset")

    with pytest.raises(CommandError, match="no preset named 'y'"):
        Command().execute(no_color=True, force_color=False, skip_checks=True, verbosity=1)
    assert Conflict.status == 409
