"""Generation run jobs are spelled as every job kind now is, `app.kind`."""

from django.db import migrations


def rename(apps, schema_editor, old, new):
    apps.get_model("jobs", "Job").objects.filter(kind=old).update(kind=new)


class Migration(migrations.Migration):
    dependencies = [
        ("generation", "0009_corpus_models_move_to_corpora"),
        ("jobs", "0005_job_queue"),
    ]

    operations = [
        migrations.RunPython(
            lambda apps, editor: rename(apps, editor, "generation_run", "generation.run"),
            lambda apps, editor: rename(apps, editor, "generation.run", "generation_run"),
        )
    ]
