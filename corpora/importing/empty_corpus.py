"""A corpus that an import creates: marked in its stats while the import job runs
(`IMPORTING_JOB`), and removed again when the import fails (all-or-nothing).
"""

from __future__ import annotations

from django.db import transaction

# A corpus that an import job creates carries this in its stats until the import
# succeeds (which replaces the stats): the cleanup removes it if the job died.
IMPORTING_JOB = "created_by_import_job"


def _forget_empty_corpus(corpus_id: int, job_id: int | None) -> bool:
    """A corpus created by an import that failed is removed again (all-or-nothing),
    unless it got rows meanwhile or another import job is now filling it. True when it
    was removed."""
    from jobs.models import Job

    from ..models import Corpus, Triple
    from ..services import IMPORT_JOB

    with transaction.atomic():
        corpus = Corpus.objects.select_for_update().filter(pk=corpus_id, triple_count=0).first()
        if corpus is None or Triple.objects.filter(corpus_id=corpus_id).exists():
            return False
        others = Job.objects.filter(
            kind=IMPORT_JOB, status__in=Job.ACTIVE_STATUSES, params__corpus=corpus.name
        ).exclude(pk=job_id)
        if others.exists():
            return False
        corpus.delete()
        return True
