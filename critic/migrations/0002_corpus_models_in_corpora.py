"""The corpus models now live in `corpora` (same tables): references to them
change in Django's state only."""


import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('corpora', '0001_initial'),
        ('critic', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='corpusscoring',
                    name='corpus',
                    field=models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='scoring', to='corpora.corpus'),
                ),
                migrations.AlterField(
                    model_name='criticconfig',
                    name='corpus',
                    field=models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='critic_config', to='corpora.corpus'),
                ),
                migrations.AlterField(
                    model_name='criticversion',
                    name='corpus',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='critic_versions', to='corpora.corpus'),
                ),
                migrations.AlterField(
                    model_name='filterpreset',
                    name='corpus',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='filter_presets', to='corpora.corpus'),
                ),
            ],
            database_operations=[],
        ),
    ]
