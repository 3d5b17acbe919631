import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_anonymous_home_goes_to_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_researcher_home_goes_to_the_corpus_list(researcher_client):
    response = researcher_client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"] == reverse("corpora:corpus_list")


def test_annotator_home_shows_the_queue_page_and_no_corpus_links(annotator_client):
    response = annotator_client.get(reverse("home"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "annotation queue will appear here" in html
    assert reverse("corpora:corpus_list") not in html
    assert reverse("jobs:job_list") not in html


def test_login_page_logs_in_and_logout_logs_out(client, researcher):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert 'name="password"' in page.content.decode()
    response = client.post(
        reverse("login"), {"username": researcher.username, "password": "pw-for-tests-123"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert client.get(reverse("corpora:corpus_list")).status_code == 200

    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert client.get(reverse("corpora:corpus_list")).status_code == 302


def test_wrong_password_shows_an_error(client, researcher):
    response = client.post(reverse("login"), {"username": researcher.username, "password": "no"})
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()


def test_nav_shows_researcher_links_and_a_post_logout(researcher_client):
    html = researcher_client.get(reverse("corpora:corpus_list")).content.decode()
    for name in ("corpora:corpus_list", "corpora:relation_list", "jobs:job_list", "api-docs"):
        assert f'href="{reverse(name)}"' in html
    assert f'<form method="post" action="{reverse("logout")}">' in html
    assert reverse("admin:index") not in html  # not staff
