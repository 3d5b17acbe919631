"""The corpus models move here from `generation`, their tables untouched: only
Django's idea of which app owns them changes (and the content types, so admin
permissions follow)."""


import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


MODELS = ["relation", "corpus", "event", "triple", "scoreset", "triplescore"]


def content_types_follow(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="generation", model__in=MODELS).update(
        app_label="corpora"
    )


def content_types_go_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="corpora", model__in=MODELS).update(
        app_label="generation"
    )


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('generation', '0008_teacher_limits_and_run_lease'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('jobs', '0003_progress_message'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Event',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('text', models.TextField(unique=True)),
                    ],
                    options={
                        'db_table': 'generation_event',
                    },
                ),
                migrations.CreateModel(
                    name='Relation',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=40, unique=True, validators=[django.core.validators.RegexValidator('^[A-Za-z][A-Za-z0-9_]{0,39}$', 'A relation name is a letter followed by up to 39 letters, digits or underscores.')])),
                        ('category', models.CharField(blank=True, max_length=16)),
                        ('description', models.TextField(blank=True, help_text='Guideline shown to annotators.')),
                        ('sentence_template', models.CharField(help_text='How people read a triple, with {head} and {tail}.', max_length=200)),
                        ('prompt_template', models.CharField(help_text='What the teacher is asked, with {head}.', max_length=500)),
                        ('verbalization', models.CharField(help_text="Words joining head and tail in the critic's input.", max_length=200)),
                        ('is_builtin', models.BooleanField(default=False)),
                        ('is_skd', models.BooleanField(default=False, help_text='One of the seven relations of Symbolic Knowledge Distillation.')),
                    ],
                    options={
                        'db_table': 'generation_relation',
                        'ordering': ['-is_skd', 'name'],
                    },
                ),
                migrations.CreateModel(
                    name='Corpus',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100, unique=True)),
                        ('description', models.TextField(blank=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('triple_count', models.BigIntegerField(default=0)),
                        ('occurrence_count', models.BigIntegerField(default=0)),
                        ('stats', models.JSONField(blank=True, default=dict)),
                        ('imports', models.JSONField(blank=True, default=list)),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'verbose_name_plural': 'corpora',
                        'db_table': 'generation_corpus',
                        'ordering': ['name'],
                    },
                ),
                migrations.CreateModel(
                    name='ScoreSet',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('corpus', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='score_sets', to='corpora.corpus')),
                    ],
                    options={
                        'db_table': 'generation_scoreset',
                    },
                ),
                migrations.AddField(
                    model_name='corpus',
                    name='score_set',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='corpora.scoreset'),
                ),
                migrations.CreateModel(
                    name='Triple',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('tail', models.TextField()),
                        ('tail_key', models.BigIntegerField()),
                        ('split', models.CharField(default='train', max_length=16)),
                        ('origin', models.CharField(choices=[('import', 'Import'), ('teacher', 'Teacher'), ('student', 'Student'), ('manual', 'Manual')], default='import', max_length=8)),
                        ('occurrences', models.PositiveIntegerField(default=1, help_text='How many times the triple appeared in what was imported.')),
                        ('source_fields', models.TextField(blank=True, default='')),
                        ('corpus', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, to='corpora.corpus')),
                        ('head', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, to='corpora.event')),
                        ('import_job', models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, to='jobs.job')),
                        ('relation', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, to='corpora.relation')),
                    ],
                    options={
                        'db_table': 'generation_triple',
                    },
                ),
                migrations.CreateModel(
                    name='TripleScore',
                    fields=[
                        ('pk', models.CompositePrimaryKey('score_set', 'triple', blank=True, editable=False, primary_key=True, serialize=False)),
                        ('score', models.FloatField()),
                        ('score_set', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='corpora.scoreset')),
                        ('triple', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='scores', to='corpora.triple')),
                    ],
                    options={
                        'db_table': 'generation_triplescore',
                    },
                ),
                migrations.AddIndex(
                    model_name='triple',
                    index=models.Index(fields=['corpus', 'id'], name='triple_corpus_id'),
                ),
                migrations.AddConstraint(
                    model_name='triple',
                    constraint=models.UniqueConstraint(fields=('head', 'relation', 'tail_key', 'corpus'), name='triple_unique_in_corpus'),
                ),
                migrations.AddIndex(
                    model_name='triplescore',
                    index=models.Index(fields=['score_set', 'score'], name='triplescore_set_score'),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_follow, content_types_go_back),
    ]
