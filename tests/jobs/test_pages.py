import pytest
from django.urls import reverse

from jobs.models import Job
from jobs.progress import progress_write

pytestmark = pytest.mark.django_db


def job_pages(job: Job) -> list[str]:
    return [
        reverse("jobs:job_list"),
        reverse("jobs:job_detail", args=[job.pk]),
        reverse("jobs:job_download", args=[job.pk]),
        reverse("jobs:job_rejected", args=[job.pk]),
    ]


@pytest.fixture
def export_job(tmp_path, settings) -> Job:
    path = settings.MEDIA_ROOT / "exports" / "abc" / "c.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text('{"head": "h"}\n')
    return Job.objects.create(
        kind="corpora.export",
        status=Job.Status.SUCCEEDED,
        params={"corpus_id": 0, "format": "jsonl", "path": str(path)},
        result={"rows": 1, "format": "jsonl", "seconds": 0.1, "path": str(path)},
    )


def test_job_list_shows_recent_jobs(researcher_client, researcher):
    job = Job.objects.create(kind="corpora.import", created_by=researcher)
    html = researcher_client.get(reverse("jobs:job_list")).content.decode()
    assert reverse("jobs:job_detail", args=[job.pk]) in html
    assert "corpora.import" in html and researcher.username in html


def test_annotators_get_403_on_job_pages(annotator_client, export_job):
    for url in job_pages(export_job):
        assert annotator_client.get(url).status_code == 403, url


def test_anonymous_users_are_sent_to_login_from_job_pages(client, export_job):
    for url in job_pages(export_job):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login"))


def test_a_running_job_polls_its_status_block(researcher_client):
    job = Job.objects.create(kind="corpora.import", status=Job.Status.RUNNING)
    progress_write(job.pk, done=25, total=100, message="1,234 rows")
    url = reverse("jobs:job_detail", args=[job.pk])

    page = researcher_client.get(url).content.decode()
    assert "<html" in page
    assert f'hx-get="{url}" hx-trigger="every 1s" hx-swap="outerHTML"' in page
    assert 'aria-valuenow="25"' in page and "1,234 rows" in page
    assert '<meta http-equiv="refresh"' in page  # without JavaScript

    fragment = researcher_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment
    assert fragment.strip().startswith('<section id="job-status"')
    assert 'hx-trigger="every 1s"' in fragment


def test_a_finished_job_stops_polling(researcher_client, export_job):
    url = reverse("jobs:job_detail", args=[export_job.pk])
    fragment = researcher_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in fragment
    assert reverse("jobs:job_download", args=[export_job.pk]) in fragment


def test_download_serves_the_export_file(researcher_client, export_job):
    response = researcher_client.get(reverse("jobs:job_download", args=[export_job.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b'{"head": "h"}\n'


def test_download_is_404_unless_a_succeeded_job_with_its_file(researcher_client, export_job):
    url = reverse("jobs:job_download", args=[export_job.pk])
    export_job.status = Job.Status.RUNNING
    export_job.save()
    assert researcher_client.get(url).status_code == 404

    export_job.status = Job.Status.SUCCEEDED
    saved_result = export_job.result
    export_job.result = {"rows": 3}  # wrote no file
    export_job.save()
    assert researcher_client.get(url).status_code == 404

    export_job.result = saved_result
    export_job.save()
    assert researcher_client.get(url).status_code == 200

    export_job.result = {"path": "/etc/passwd"}  # outside MEDIA_ROOT
    export_job.save()
    assert researcher_client.get(url).status_code == 404

    rejected = reverse("jobs:job_rejected", args=[export_job.pk])
    assert researcher_client.get(rejected).status_code == 404  # not an import
    assert researcher_client.get(reverse("jobs:job_detail", args=[999999])).status_code == 404


def test_rejected_lines_are_404_when_there_are_none(researcher_client):
    job = Job.objects.create(
        kind="corpora.import", status=Job.Status.SUCCEEDED, result={"rejected_path": None}
    )
    assert researcher_client.get(reverse("jobs:job_rejected", args=[job.pk])).status_code == 404


def test_results_and_parameters_read_as_text_not_python(researcher_client):
    job = Job.objects.create(
        kind="something-new",
        status=Job.Status.SUCCEEDED,
        params={"relations": ["xNeed", "xWant"], "min_score": None, "cancellable": True},
        result={
            "done": 12345,
            "cost": None,
            "dropped": {},
            "batches": {"done": 4, "failed": 1},
            "roc_auc": 0.873124,
            "finished": True,
            "path": "/somewhere/inside/media.jsonl",
        },
    )
    html = researcher_client.get(reverse("jobs:job_detail", args=[job.pk])).content.decode()
    status = html[html.index('id="job-status"') :]
    for python in ("{", "[", "None", "True", "&#x27;"):
        assert python not in html[html.index("<h1>") : html.index("</main>")], python
    assert "<dt>done</dt><dd>12,345</dd>" in status
    assert "<dt>cost</dt><dd>–</dd>" in status and "<dt>dropped</dt><dd>–</dd>" in status
    assert '<dt>batches</dt><dd><dl class="params nested">' in status
    assert "<dt>failed</dt><dd>1</dd>" in status
    assert "<dt>roc auc</dt><dd>0.8731</dd>" in status and "<dt>finished</dt><dd>yes</dd>" in status
    assert "media.jsonl" not in status
    assert "<dt>relations</dt><dd>xNeed, xWant</dd>" in html
    assert "<dt>min score</dt><dd>–</dd>" in html
