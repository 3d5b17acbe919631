"""Each job keeps the queue it was sent to. Jobs of the former `..._gpu` twin tasks
(routed to the gpu queue by task name) become jobs of the one task, on the gpu queue."""


from django.db import migrations, models


GPU_SUFFIX = "_gpu"


def gpu_twins_to_queue(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    for job in Job.objects.filter(task_name__endswith=GPU_SUFFIX).only("pk", "task_name"):
        Job.objects.filter(pk=job.pk).update(
            task_name=job.task_name[: -len(GPU_SUFFIX)], queue="gpu"
        )


def queue_to_gpu_twins(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    for job in Job.objects.filter(queue="gpu").only("pk", "task_name"):
        Job.objects.filter(pk=job.pk).update(task_name=job.task_name + GPU_SUFFIX)


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0004_job_title_and_subject'),
    ]

    operations = [
        migrations.AddField(
            model_name='job',
            name='queue',
            field=models.CharField(default='default', help_text='The broker queue its messages go to, chosen when it is queued (gpu for work that wants a GPU).', max_length=40),
        ),
        migrations.RunPython(gpu_twins_to_queue, queue_to_gpu_twins),
    ]
