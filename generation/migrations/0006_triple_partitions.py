"""On PostgreSQL the triple table becomes list-partitioned by corpus.

A corpus that is imported while empty can then be loaded into a bare table, indexed
once full and attached (bulk.PartitionLoader), instead of keeping three indexes up to
date row by row; deleting a corpus drops its partition.

- The primary key becomes (id, corpus_id): a key of a partitioned table must hold the
  partition column. Ids still come from one sequence, so `id` alone stays unique.
- Every partition holds one corpus, so the model's (corpus, id) index is the key's
  index there and is not built.
- A trigger on the corpus table creates a corpus's partition when the corpus is
  created (whatever creates it; an import that creates the corpus attaches its own
  loaded table instead, see partitions.deferred_partition) and drops it when the corpus is
  deleted.

Django's model state does not change; SQLite keeps the plain table.
"""

from django.db import migrations

PARTITION_FUNCTIONS = """
CREATE OR REPLACE FUNCTION generation_triple_partition_create(corpus bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    part text := 'generation_triple_' || corpus;
    attached boolean;
BEGIN
    SELECT i.inhrelid IS NOT NULL INTO attached
    FROM pg_class c LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
    WHERE c.relname = part AND c.relnamespace = current_schema()::regnamespace;
    IF attached THEN
        RETURN;
    END IF;
    EXECUTE format('DROP TABLE IF EXISTS %I', part);  -- a detached leftover
    -- Created bare and attached (rather than PARTITION OF) so that only a SHARE UPDATE
    -- EXCLUSIVE lock is taken on the parent: readers and writers go on meanwhile.
    EXECUTE format(
        'CREATE TABLE %I (LIKE generation_triple INCLUDING DEFAULTS INCLUDING CONSTRAINTS,'
        ' CONSTRAINT %I CHECK (corpus_id = %s))', part, part || '_corpus', corpus);
    EXECUTE format(
        'ALTER TABLE generation_triple ATTACH PARTITION %I FOR VALUES IN (%s)', part, corpus);
END $$;

CREATE OR REPLACE FUNCTION generation_corpus_partition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- An import creating the corpus attaches its own loaded table instead.
        IF coalesce(current_setting('skd.defer_triple_partition', true), '') <> 'on' THEN
            PERFORM generation_triple_partition_create(NEW.id);
        END IF;
    ELSE
        EXECUTE format('DROP TABLE IF EXISTS %I', 'generation_triple_' || OLD.id);
    END IF;
    RETURN NULL;
END $$;
"""

PARTITION = """
ALTER TABLE generation_triple RENAME TO generation_triple_unpartitioned;
ALTER TABLE generation_triple_unpartitioned
    RENAME CONSTRAINT triple_unique_in_corpus TO triple_unique_in_corpus_unpartitioned;
ALTER TABLE generation_triple_unpartitioned
    RENAME CONSTRAINT generation_triple_pkey TO generation_triple_unpartitioned_pkey;
CREATE TABLE generation_triple (
    LIKE generation_triple_unpartitioned
        INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY,
    CONSTRAINT generation_triple_pkey PRIMARY KEY (id, corpus_id),
    CONSTRAINT triple_unique_in_corpus UNIQUE (corpus_id, head_id, relation_id, tail_key)
) PARTITION BY LIST (corpus_id);
"""

UNPARTITION = """
DROP TRIGGER IF EXISTS generation_corpus_partition ON generation_corpus;
DROP FUNCTION IF EXISTS generation_corpus_partition();
DROP FUNCTION IF EXISTS generation_triple_partition_create(bigint);
ALTER TABLE generation_triple RENAME TO generation_triple_partitioned;
ALTER TABLE generation_triple_partitioned
    RENAME CONSTRAINT triple_unique_in_corpus TO triple_unique_in_corpus_partitioned;
ALTER TABLE generation_triple_partitioned
    RENAME CONSTRAINT generation_triple_pkey TO generation_triple_partitioned_pkey;
CREATE TABLE generation_triple (
    LIKE generation_triple_partitioned
        INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY,
    CONSTRAINT generation_triple_pkey PRIMARY KEY (id),
    CONSTRAINT triple_unique_in_corpus UNIQUE (corpus_id, head_id, relation_id, tail_key)
);
INSERT INTO generation_triple SELECT * FROM generation_triple_partitioned ORDER BY id;
DROP TABLE generation_triple_partitioned;
CREATE INDEX triple_corpus_id ON generation_triple (corpus_id, id);
"""


def _sequence_follow_ids(schema_editor) -> None:
    """The new table's id sequence starts after the ids already given, and keeps the
    usual name."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence('generation_triple', 'id')")
        sequence = cursor.fetchone()[0]
        cursor.execute(
            "SELECT setval(%s, coalesce(max(id), 0) + 1, false) FROM generation_triple",
            [sequence],
        )
        if sequence.split(".")[-1] != "generation_triple_id_seq":
            cursor.execute(f"ALTER SEQUENCE {sequence} RENAME TO generation_triple_id_seq")


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # No parameters: the function bodies hold format()'s own % codes.
    schema_editor.execute(PARTITION, None)
    schema_editor.execute(PARTITION_FUNCTIONS, None)
    Corpus = apps.get_model("generation", "Corpus")
    for corpus_id in Corpus.objects.order_by("pk").values_list("pk", flat=True):
        schema_editor.execute("SELECT generation_triple_partition_create(%s)", [corpus_id])
        schema_editor.execute(
            "INSERT INTO generation_triple SELECT * FROM generation_triple_unpartitioned "
            "WHERE corpus_id = %s ORDER BY id",
            [corpus_id],
        )
    # Rows of corpora that no longer exist are left behind with the old table.
    schema_editor.execute("DROP TABLE generation_triple_unpartitioned")
    _sequence_follow_ids(schema_editor)
    schema_editor.execute(
        "CREATE TRIGGER generation_corpus_partition AFTER INSERT OR DELETE ON generation_corpus "
        "FOR EACH ROW EXECUTE FUNCTION generation_corpus_partition()"
    )
    schema_editor.execute("ANALYZE generation_triple")


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(UNPARTITION, None)
    _sequence_follow_ids(schema_editor)


class Migration(migrations.Migration):
    atomic = True

    dependencies = [
        ("generation", "0005_score_sets"),
    ]

    operations = [migrations.RunPython(partition, unpartition)]
