"""Import and export jobs queued before the move keep working when retried: their
stored task names follow the tasks to `corpora`, and their kinds are spelled as every
job kind now is, `app.kind`."""

from django.db import migrations

RENAMED = {
    "generation.run_import_job": "corpora.run_import_job",
    "generation.run_export_job": "corpora.run_export_job",
}


KINDS = {"corpus_import": "corpora.import", "corpus_export": "corpora.export"}


def rename(apps, schema_editor, names, kinds):
    Job = apps.get_model("jobs", "Job")
    for old, new in names.items():
        Job.objects.filter(task_name=old).update(task_name=new)
    for old, new in kinds.items():
        Job.objects.filter(kind=old).update(kind=new)


def back(mapping: dict) -> dict:
    return {new: old for old, new in mapping.items()}


class Migration(migrations.Migration):
    dependencies = [
        ("corpora", "0001_initial"),
        ("jobs", "0003_progress_message"),
    ]

    operations = [
        migrations.RunPython(
            lambda apps, editor: rename(apps, editor, RENAMED, KINDS),
            lambda apps, editor: rename(apps, editor, back(RENAMED), back(KINDS)),
        )
    ]
