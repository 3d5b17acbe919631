"""Import and export jobs queued before the move keep working when retried: their
stored task names follow the tasks to `corpora`."""

from django.db import migrations

RENAMED = {
    "generation.run_import_job": "corpora.run_import_job",
    "generation.run_export_job": "corpora.run_export_job",
}


def rename(apps, schema_editor, names):
    Job = apps.get_model("jobs", "Job")
    for old, new in names.items():
        Job.objects.filter(task_name=old).update(task_name=new)


class Migration(migrations.Migration):
    dependencies = [
        ("corpora", "0001_initial"),
        ("jobs", "0003_progress_message"),
    ]

    operations = [
        migrations.RunPython(
            lambda apps, editor: rename(apps, editor, RENAMED),
            lambda apps, editor: rename(apps, editor, {v: k for k, v in RENAMED.items()}),
        )
    ]
