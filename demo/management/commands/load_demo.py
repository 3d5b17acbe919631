from pathlib import Path

from django.conf import settings

from accounts.services import user_create_with_role
from core.handlers import AppCommand
from corpora.models import Corpus
from corpora.services import corpus_import

DEMO_CORPUS = Path(settings.BASE_DIR) / "demo" / "demo_corpus.jsonl"
DEMO_USERS = [
    ("researcher", "skd-researcher-demo", "researcher"),
    ("annotator", "skd-annotator-demo", "annotator"),
    ("annotator2", "skd-annotator2-demo", "annotator"),
]
DEMO_CAMPAIGN = "demo: first look"
DEMO_TEACHER = "demo-tiny-gpt2"


class Command(AppCommand):
    help = "Load the demo corpus and create the demo researcher and annotator (idempotent)."

    def handle(self, *args, **options):
        if not Corpus.objects.filter(name="demo", triple_count__gt=0).exists():
            summary = corpus_import(path=DEMO_CORPUS, corpus_name="demo")
            self.stdout.write(summary.line())
        else:
            self.stdout.write("demo corpus already loaded")
        for username, password, role in DEMO_USERS:
            user = user_create_with_role(username=username, password=password, role=role)
            if role == "researcher" and not user.is_staff:
                user.is_staff = user.is_superuser = True  # the demo researcher may use the admin
                user.save(update_fields=["is_staff", "is_superuser"])
        self._demo_campaign()
        self._demo_critic()
        self._demo_student_base()
        self._demo_teacher()
        self.stdout.write("\nDemo logins:")
        for username, password, role in DEMO_USERS:
            self.stdout.write(f"  {role:<10}  user: {username:<10}  password: {password}")

    def _demo_campaign(self) -> None:
        from django.contrib.auth import get_user_model

        from annotation.models import Campaign
        from annotation.services.campaigns import campaign_create
        from annotation.services.membership import member_add

        campaign = Campaign.objects.filter(name=DEMO_CAMPAIGN).first()
        if campaign is None:
            campaign = self._demo_campaign_create(campaign_create)
        # Only members judge a campaign: the demo annotators are members of this one.
        names = [name for name, _, role in DEMO_USERS if role == "annotator"]
        for user in get_user_model().objects.filter(username__in=names):
            member_add(campaign=campaign, annotator=user)

    def _demo_campaign_create(self, campaign_create):
        campaign = campaign_create(
            corpus=Corpus.objects.get(name="demo"),
            name=DEMO_CAMPAIGN,
            size=60,
            judgments_per_item=2,
            gold_share=0.1,
            seed=2021,
            instructions="Judge whether the inference is plausible for most people.",
        )
        self.stdout.write(
            f"demo campaign '{campaign.name}': {campaign.item_count} items, "
            f"{campaign.gold_count} gold, {campaign.judgments_per_item} judgments each"
        )
        return campaign

    def _demo_student_base(self) -> None:
        from distillation.demo import demo_base_model_ensure

        path = demo_base_model_ensure()
        self.stdout.write(f"a tiny untrained GPT-2 to try student runs with: {path}")

    def _demo_teacher(self) -> None:
        """A teacher that runs anywhere (the tiny GPT-2, in process on the CPU) and a
        few-shot pool from the demo corpus, so a generation run can be tried at once."""
        from corpora.models import Triple
        from distillation.demo import DEMO_BASE_MODEL
        from generation.models import FewShotPool, Teacher
        from generation.services.pools import pool_import_lines
        from generation.services.teachers import teacher_create

        if not Teacher.objects.filter(name=DEMO_TEACHER).exists():
            teacher_create(
                name=DEMO_TEACHER,
                backend=Teacher.Backend.TRANSFORMERS,
                model=str(DEMO_BASE_MODEL),
                device="cpu",
                max_tokens=16,
                concurrency=8,
            )
        pool, created = FewShotPool.objects.get_or_create(
            name="demo", defaults={"description": "The demo corpus's training triples."}
        )
        if created:
            rows = Triple.objects.filter(corpus__name="demo", split="train").values_list(
                "head__text", "relation__name", "tail"
            )
            pool_import_lines(pool=pool, lines=("\t".join(row) for row in rows), source="demo ")
        self.stdout.write(
            f"demo teacher '{DEMO_TEACHER}' (the tiny GPT-2, untrained: expect word salad) "
            f"and few-shot pool 'demo' ({pool.examples.count()} examples)"
        )

    def _demo_critic(self) -> None:
        """The demo corpus's SKD labels become the first critic version, and the critic
        retrains itself after every 10 new labels (200 is the default for real corpora)."""
        from annotation.models import Campaign
        from annotation.services.labels import campaign_import_labels
        from critic.models import CriticVersion
        from critic.services.config import critic_config_update
        from critic.services.scoring import corpus_rescore
        from critic.services.training import critic_train

        corpus = Corpus.objects.get(name="demo")
        critic_config_update(corpus=corpus, retrain_every=10)
        if not Campaign.objects.filter(corpus=corpus, name__startswith="imported").exists():
            campaign_import_labels(corpus=corpus)
        if CriticVersion.objects.filter(corpus=corpus).exists():
            return
        version = critic_train(corpus=corpus, queue_rescore=False)
        scoring = corpus_rescore(corpus=corpus)
        self.stdout.write(
            f"demo critic {version.label}: {version.label_count} imported labels, held-out "
            f"ROC-AUC {version.metrics.get('roc_auc'):.3f}; {scoring.scored_count} triples scored"
        )
