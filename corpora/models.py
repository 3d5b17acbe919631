"""The corpus: relations, head events, triples and the critic's score sets.

The tables keep the names they had when these models lived in `generation` (db_table),
so moving them here moved no row; raw SQL across the project names them so.
"""

from __future__ import annotations

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

MAX_TEXT_LENGTH = 500

relation_name_validator = RegexValidator(
    r"^[A-Za-z][A-Za-z0-9_]{0,39}$",
    "A relation name is a letter followed by up to 39 letters, digits or underscores.",
)


class Relation(models.Model):
    name = models.CharField(max_length=40, unique=True, validators=[relation_name_validator])
    category = models.CharField(max_length=16, blank=True)
    description = models.TextField(blank=True, help_text="Guideline shown to annotators.")
    sentence_template = models.CharField(
        max_length=200, help_text="How people read a triple, with {head} and {tail}."
    )
    prompt_template = models.CharField(
        max_length=500, help_text="What the teacher is asked, with {head}."
    )
    verbalization = models.CharField(
        max_length=200, help_text="Words joining head and tail in the critic's input."
    )
    is_builtin = models.BooleanField(default=False)
    is_skd = models.BooleanField(
        default=False, help_text="One of the seven relations of Symbolic Knowledge Distillation."
    )

    class Meta:
        db_table = "generation_relation"
        ordering = ["-is_skd", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if "{head}" not in self.sentence_template or "{tail}" not in self.sentence_template:
            raise ValidationError({"sentence_template": "Must contain {head} and {tail}."})
        if "{head}" not in self.prompt_template:
            raise ValidationError({"prompt_template": "Must contain {head}."})

    def sentence(self, head: str, tail: str) -> str:
        return self.sentence_template.replace("{head}", head).replace("{tail}", tail)


class Corpus(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Denormalized counts, refreshed by every write that changes the corpus:
    # the corpus page must not scan millions of rows.
    triple_count = models.BigIntegerField(default=0)
    occurrence_count = models.BigIntegerField(default=0)
    stats = models.JSONField(default=dict, blank=True)
    # Every successful import (file, format, time, rows, job): where the corpus came from.
    imports = models.JSONField(default=list, blank=True)
    # The set of critic scores in force (see TripleScore); None until first scored.
    score_set = models.ForeignKey(
        "ScoreSet", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "generation_corpus"
        ordering = ["name"]
        verbose_name_plural = "corpora"

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def score_set_in_force(corpus_id: int) -> int | None:
        """The id of the corpus's score set in force, read fresh (a rescoring may have
        swapped it since the corpus object was loaded)."""
        found = Corpus.objects.filter(pk=corpus_id).values_list("score_set", flat=True)
        return found.first()


class Event(models.Model):
    """A head event, shared by every corpus that has triples about it."""

    text = models.TextField(unique=True)

    class Meta:
        db_table = "generation_event"

    def __str__(self) -> str:
        return self.text


class TripleQuerySet(models.QuerySet):
    def with_score(self, corpus: Corpus | int) -> TripleQuerySet:
        """Annotate `score`: the critic's score of each triple in the corpus's set in
        force (None for triples it has not scored). Filter on it like a field."""
        corpus_id = corpus if isinstance(corpus, int) else corpus.pk
        score_set_id = Corpus.score_set_in_force(corpus_id) or 0
        return self.annotate(
            scored=models.FilteredRelation(
                "scores", condition=models.Q(scores__score_set=score_set_id)
            ),
            score=models.F("scored__score"),
        )


class Triple(models.Model):
    class Origin(models.TextChoices):
        IMPORT = "import"
        TEACHER = "teacher"
        STUDENT = "student"
        MANUAL = "manual"

    # No database-level foreign keys on this table: per-row FK triggers halve
    # bulk-load speed, and every writer takes ids from the referenced tables.
    # Deletions go through services (corpus_delete) that remove triples first.
    corpus = models.ForeignKey(
        Corpus, on_delete=models.CASCADE, db_index=False, db_constraint=False
    )
    head = models.ForeignKey(Event, on_delete=models.PROTECT, db_index=False, db_constraint=False)
    relation = models.ForeignKey(
        Relation, on_delete=models.PROTECT, db_index=False, db_constraint=False
    )
    tail = models.TextField()
    # 64-bit hash of the normalized tail: duplicates are found by an integer
    # index instead of an index on the text.
    tail_key = models.BigIntegerField()
    split = models.CharField(max_length=16, default="train")
    origin = models.CharField(max_length=8, choices=Origin.choices, default=Origin.IMPORT)
    import_job = models.ForeignKey(
        "jobs.Job",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_index=False,
        db_constraint=False,
    )
    occurrences = models.PositiveIntegerField(
        default=1, help_text="How many times the triple appeared in what was imported."
    )
    # Fields of the source record beyond head/relation/tail/split (e.g. the
    # SKD release's p_valid_model, rec_*, valid), as JSON text in their
    # original order so an export gives them back as they came.
    source_fields = models.TextField(blank=True, default="")

    objects = TripleQuerySet.as_manager()

    class Meta:
        db_table = "generation_triple"
        constraints = [
            # Corpus last: within a corpus's partition (PostgreSQL) it is the same in
            # every row, and as the leading column it made each build of the index
            # compare it first for nothing (building it took a third longer).
            models.UniqueConstraint(
                fields=["head", "relation", "tail_key", "corpus"], name="triple_unique_in_corpus"
            )
        ]
        indexes = [
            # Triples of a corpus in id (file) order, for exports and keyset pages.
            models.Index(fields=["corpus", "id"], name="triple_corpus_id"),
        ]

    def __str__(self) -> str:
        return f"{self.head_id} {self.relation_id} {self.tail}"

    @property
    def source_fields_dict(self) -> dict:
        return orjson.loads(self.source_fields) if self.source_fields else {}


class ScoreSet(models.Model):
    """One complete scoring of a corpus's triples by the critic. A rescoring writes a
    new set beside the one in force and swaps the corpus over to it in one step, so
    readers never see two versions' scores mixed; older sets are then dropped."""

    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="score_sets")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "generation_scoreset"

    def __str__(self) -> str:
        return f"scores {self.pk} of {self.corpus_id}"


class TripleScore(models.Model):
    """A triple's critic score within one score set. Kept out of the wide triple table
    so that a rescoring is a bulk load of narrow rows, not an UPDATE of every triple.
    On PostgreSQL the table is partitioned by score set (one partition per set: loaded
    without indexes, indexed, attached; an old set is dropped whole)."""

    pk = models.CompositePrimaryKey("score_set", "triple")
    score_set = models.ForeignKey(
        ScoreSet,
        on_delete=models.DO_NOTHING,
        db_index=False,
        db_constraint=False,
        related_name="+",
    )
    triple = models.ForeignKey(
        Triple,
        on_delete=models.DO_NOTHING,
        db_index=False,
        db_constraint=False,
        related_name="scores",
    )
    score = models.FloatField()

    class Meta:
        db_table = "generation_triplescore"
        indexes = [models.Index(fields=["score_set", "score"], name="triplescore_set_score")]

    def __str__(self) -> str:
        return f"{self.triple_id}: {self.score:.3f} (set {self.score_set_id})"
