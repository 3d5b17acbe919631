"""Student jobs are spelled as every job kind now is, `app.kind`."""

from django.db import migrations

KINDS = {"student-train": "distillation.train", "student-evaluate": "distillation.evaluate"}


def rename(apps, schema_editor, kinds):
    Job = apps.get_model("jobs", "Job")
    for old, new in kinds.items():
        Job.objects.filter(kind=old).update(kind=new)


class Migration(migrations.Migration):
    dependencies = [
        ("distillation", "0002_corpus_models_in_corpora"),
        ("jobs", "0005_job_queue"),
    ]

    operations = [
        migrations.RunPython(
            lambda apps, editor: rename(apps, editor, KINDS),
            lambda apps, editor: rename(apps, editor, {v: k for k, v in KINDS.items()}),
        )
    ]
