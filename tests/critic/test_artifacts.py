"""Critic artifacts that cannot collide: each version's files live under its own key, and a
version whose files are not the ones saved for it refuses to load."""

import numpy as np
import pytest
from django.db.models import Q

from annotation.models import Campaign, Item
from core.artifacts import forget_verified
from corpora.models import Corpus
from corpora.services import corpus_delete, corpus_import
from critic.corpus_data import relation_verbalizations, triples_by_id
from critic.errors import CriticArtifactError
from critic.labels import corpus_labels
from critic.models import CriticVersion, EmbeddingSet
from critic.services.config import artifact_root
from critic.services.embedding import embedding_store_get, encoder_get
from critic.services.loading import _load_critic_cached, critic_load
from critic.services.scoring import corpus_rescore
from critic.services.training import critic_train
from critic.tiers import tier_get
from tests.conftest import DEMO_CORPUS
from tests.sequences import next_id_will_be

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    _load_critic_cached.cache_clear()
    forget_verified()
    yield
    _load_critic_cached.cache_clear()
    forget_verified()


def _scores(version: CriticVersion, corpus: Corpus) -> np.ndarray:
    ids = corpus_labels(corpus_id=corpus.pk).learning.triple_ids[:60]
    return critic_load(version).score(triples_by_id(ids), relation_verbalizations())


def _scores_from_disk(version: CriticVersion, corpus: Corpus) -> np.ndarray:
    """What the version's own folder holds, read past every process cache."""
    loaded = tier_get(version.tier).load(
        version_id=version.pk, folder=artifact_root() / version.artifact, encoder=version.encoder
    )
    ids = corpus_labels(corpus_id=corpus.pk).learning.triple_ids[:60]
    return loaded.score(triples_by_id(ids), relation_verbalizations())


def _invert_labels(corpus: Corpus) -> None:
    """Another database's crowd: every label the other way round (adjudicated)."""
    items = Item.objects.filter(campaign__corpus=corpus)
    good = list(
        items.filter(Q(ds_label=True) | Q(ds_label__isnull=True, majority=True)).values_list(
            "pk", flat=True
        )
    )
    items.filter(pk__in=good).update(adjudicated_value=-2)
    items.exclude(pk__in=good).update(adjudicated_value=2)


def _labelled_demo(name: str = "demo", inverted: bool = False) -> Corpus:
    from annotation.services.labels import campaign_import_labels

    corpus_import(path=DEMO_CORPUS, corpus_name=name, fmt="skd")
    corpus = Corpus.objects.get(name=name)
    campaign_import_labels(corpus=corpus)
    if inverted:
        _invert_labels(corpus)
    return corpus


def _forget_corpus(corpus: Corpus) -> None:
    Campaign.objects.filter(corpus=corpus).delete()
    corpus_delete(corpus=corpus)


def test_two_databases_on_one_artifact_root_keep_their_own_critics(labelled_corpus):
    # Database A trains v1 of its corpus.
    mine = critic_train(corpus=labelled_corpus, queue_rescore=False)
    my_scores = _scores(mine, labelled_corpus)
    corpus_id = labelled_corpus.pk

    # Database B, on the same artifact root, has a corpus with the same id and trains its
    # own v1 on other labels.
    _forget_corpus(labelled_corpus)
    next_id_will_be(Corpus, corpus_id)
    theirs_corpus = _labelled_demo(inverted=True)
    assert theirs_corpus.pk == corpus_id
    theirs = critic_train(corpus=theirs_corpus, queue_rescore=False)
    assert theirs.number == mine.number == 1
    their_scores = _scores(theirs, theirs_corpus)
    assert np.corrcoef(my_scores, their_scores)[0, 1] < 0  # a different model indeed

    # Back in database A (a new process): v1 still scores with A's model.
    _forget_corpus(theirs_corpus)
    next_id_will_be(Corpus, corpus_id)
    back = _labelled_demo()
    assert back.pk == corpus_id
    mine.corpus = back
    mine.save(force_insert=True)
    _load_critic_cached.cache_clear()
    forget_verified()
    np.testing.assert_allclose(_scores(mine, back), my_scores)
    assert mine.artifact != theirs.artifact


def test_a_corpus_deleted_and_recreated_with_the_same_id_does_not_load_the_old_critic(
    labelled_corpus,
):
    old = critic_train(corpus=labelled_corpus, queue_rescore=False)
    old_scores = _scores(old, labelled_corpus)  # kept for the process
    corpus_id, version_id = labelled_corpus.pk, old.pk

    _forget_corpus(labelled_corpus)
    assert not CriticVersion.objects.filter(pk=version_id).exists()
    next_id_will_be(Corpus, corpus_id)
    next_id_will_be(CriticVersion, version_id)
    corpus = _labelled_demo(name="demo again", inverted=True)
    assert corpus.pk == corpus_id
    new = critic_train(corpus=corpus, queue_rescore=False)
    assert (new.pk, new.number) == (version_id, old.number)

    scores = _scores(new, corpus)
    np.testing.assert_allclose(scores, _scores_from_disk(new, corpus))
    assert not np.allclose(scores, old_scores)
    # The whole corpus is scored by the new model too.
    assert corpus_rescore(corpus=corpus).version_id == new.pk


def test_a_version_whose_files_changed_refuses_to_load(labelled_corpus):
    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    assert len(version.checksum) == 64 and str(version.artifact_key) in version.artifact
    _scores(version, labelled_corpus)  # verified and kept for the process

    model = artifact_root() / version.artifact / "fast.pkl"
    model.write_bytes(model.read_bytes() + b"another model")
    with pytest.raises(CriticArtifactError) as caught:
        critic_load(version)
    message = str(caught.value)
    assert "v1" in message and str(artifact_root() / version.artifact) in message
    assert caught.value.status == 409
    with pytest.raises(CriticArtifactError, match="v1"):
        corpus_rescore(corpus=labelled_corpus)


def test_a_failed_training_leaves_no_folder_and_a_finished_one_keeps_its_own(
    labelled_corpus, monkeypatch
):
    kept = critic_train(corpus=labelled_corpus, queue_rescore=False)
    fast = tier_get("fast")
    trained_folders = []

    def fails_after_saving(*, data, encoder, folder, progress=None):
        trained_folders.append(folder)
        folder.mkdir(parents=True)
        (folder / "fast.pkl").write_bytes(b"half a model")
        raise RuntimeError("the worker ran out of memory")

    monkeypatch.setattr(fast, "train", fails_after_saving)
    with pytest.raises(RuntimeError, match="out of memory"):
        critic_train(corpus=labelled_corpus, queue_rescore=False)
    assert trained_folders and not trained_folders[0].exists()
    assert sorted(p.name for p in (artifact_root() / "critics").iterdir()) == [
        str(kept.artifact_key)
    ]
    assert CriticVersion.objects.filter(corpus=labelled_corpus).count() == 1


def test_a_version_whose_files_are_gone_refuses_to_load(labelled_corpus):
    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    (artifact_root() / version.artifact / "fast.pkl").unlink()
    with pytest.raises(CriticArtifactError, match="do not have the checksum"):
        critic_load(version)
    for path in (artifact_root() / version.artifact).iterdir():
        path.unlink()
    (artifact_root() / version.artifact).rmdir()
    with pytest.raises(CriticArtifactError, match="folder is missing"):
        critic_load(version)


def test_a_version_saved_before_checksums_still_loads_from_its_stored_path(labelled_corpus):
    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    scores = _scores(version, labelled_corpus)
    legacy = f"critics/corpus-{labelled_corpus.pk}/v{version.number}"
    (artifact_root() / version.artifact).rename(artifact_root() / "moved")
    (artifact_root() / legacy).parent.mkdir(parents=True)
    (artifact_root() / "moved").rename(artifact_root() / legacy)
    CriticVersion.objects.filter(pk=version.pk).update(
        artifact=legacy, labels_file=f"{legacy}/labels.npz", checksum=""
    )
    version.refresh_from_db()
    _load_critic_cached.cache_clear()
    np.testing.assert_allclose(_scores(version, labelled_corpus), scores)


def test_each_database_keeps_its_own_embedding_set(labelled_corpus):
    encoder = encoder_get("all-MiniLM-L6-v2")
    mine = embedding_store_get(encoder)
    mine_set = EmbeddingSet.objects.get(encoder_key=encoder.key)
    assert mine.root == artifact_root() / "embeddings" / str(mine_set.artifact_key)

    # Another database on the same artifact root has no row for the encoder yet.
    EmbeddingSet.objects.all().delete()
    theirs = embedding_store_get(encoder)
    assert theirs.root != mine.root
    assert theirs.root.parent == mine.root.parent
