"""The student's ML layer alone (no database): COMET formatting, the collator's labels,
training with the Trainer (loss, stop and resume, saved folder), generation, measures."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from distillation.ml import measures
from distillation.ml.base_model import bf16_supported, detect_architecture
from distillation.ml.batches import LengthGroupedSampler, TripleCollator, TripleRows
from distillation.ml.errors import StudentError
from distillation.ml.formatting import (
    GEN_TOKEN,
    add_special_tokens,
    relation_token,
    source_text,
)
from distillation.ml.generating import generate_tails
from distillation.ml.training import StudentConfig, train_student

PAIRS = [
    ("PersonX eats bread", "xIntent"),
    ("PersonX eats soup", "xNeed"),
    ("PersonX eats fruit", "xIntent"),
    ("PersonX eats rice", "xNeed"),
    ("PersonX eats bread", "xNeed"),
    ("PersonX eats a lot of bread with butter", "xIntent"),  # longer: padding in its batch
]


def _config(base_model: str, **overrides) -> StudentConfig:
    values = dict(
        base_model=base_model,
        epochs=6,
        learning_rate=1e-2,
        batch_size=16,
        save_every=1000,
        device="cpu",
    )
    values.update(overrides)
    return StudentConfig(**values)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained_gpt2(one_torch_thread, tiny_gpt2, student_corpus, tmp_path_factory):
    train, val = student_corpus
    work_dir = tmp_path_factory.mktemp("gpt2-run")
    seen = []
    result = train_student(
        config=_config(tiny_gpt2),
        train_path=train,
        val_path=val,
        work_dir=work_dir,
        on_progress=seen.append,
    )
    return result, work_dir, seen


@pytest.fixture(scope="module")
def trained_t5(one_torch_thread, tiny_t5, student_corpus, tmp_path_factory):
    train, val = student_corpus
    work_dir = tmp_path_factory.mktemp("t5-run")
    result = train_student(
        config=_config(tiny_t5), train_path=train, val_path=val, work_dir=work_dir
    )
    return result, work_dir


def _tokenizer(folder: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


# --- formatting -----------------------------------------------------------------------------


def test_source_text_is_comet_style():
    assert relation_token("xIntent") == "<xIntent>"
    assert source_text("PersonX eats", "xIntent") == "PersonX eats <xIntent> [GEN]"


def test_special_tokens_are_whole_tokens_and_padding_is_not_eos(tiny_gpt2):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    # A GPT-2-like tokenizer: an end-of-text token, no padding token.
    vocab = {"<|endoftext|>": 0, "[UNK]": 1, "personx": 2, "eats": 3}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    gpt_like = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|endoftext|>", unk_token="[UNK]"
    )
    assert gpt_like.pad_token is None
    assert add_special_tokens(gpt_like, ["xIntent", "xNeed", "xIntent"]) == 4
    assert gpt_like.pad_token == "<pad>" and gpt_like.pad_token_id != gpt_like.eos_token_id
    assert add_special_tokens(gpt_like, ["xIntent", "xNeed"]) == 0  # idempotent

    bert = _tokenizer(tiny_gpt2)  # has [PAD] and [SEP]: only the relations and [GEN] added
    before = len(bert)
    assert add_special_tokens(bert, ["xWant"]) == 2 and len(bert) == before + 2
    assert bert.eos_token == "[SEP]" and bert.pad_token == "[PAD]"
    ids = bert(source_text("PersonX eats", "xWant"), add_special_tokens=False)["input_ids"]
    assert bert.convert_ids_to_tokens(ids)[-2:] == ["<xWant>", GEN_TOKEN]


# --- data and labels ------------------------------------------------------------------------

ROWS = [
    {"head": "PersonX eats bread", "relation": "xIntent", "tail": "to be full"},
    {"head": "PersonX goes to the market early", "relation": "xNeed", "tail": "money"},
]


def test_causal_labels_cover_only_the_tail_and_eos(tiny_gpt2):
    tokenizer = _tokenizer(tiny_gpt2)
    add_special_tokens(tokenizer, ["xIntent", "xNeed"])
    batch = TripleCollator(tokenizer, "causal", max_length=64)(ROWS)
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    assert ids.shape == labels.shape == mask.shape and ids.shape[0] == 2
    for row, raw in enumerate(ROWS):
        source = tokenizer(source_text(raw["head"], raw["relation"]), add_special_tokens=False)
        tail = tokenizer(" " + raw["tail"], add_special_tokens=False)["input_ids"]
        s, t = len(source["input_ids"]), len(tail)
        assert ids[row, :s].tolist() == source["input_ids"]
        assert (labels[row, :s] == -100).all()  # no loss on the source
        assert labels[row, s : s + t].tolist() == tail  # the tail is labelled ...
        assert labels[row, s + t].item() == tokenizer.eos_token_id  # ... and its end
        assert mask[row].sum().item() == s + t + 1
        assert (labels[row, s + t + 1 :] == -100).all()  # padding is not
        assert (ids[row, s + t + 1 :] == tokenizer.pad_token_id).all()
    assert batch["num_tokens"] == int(mask.sum())


def test_causal_rows_are_cut_at_max_length(tiny_gpt2):
    tokenizer = _tokenizer(tiny_gpt2)
    add_special_tokens(tokenizer, ["xIntent", "xNeed"])
    batch = TripleCollator(tokenizer, "causal", max_length=8)(ROWS)
    assert batch["input_ids"].shape[1] == 8
    # The second row's source is longer than 7 tokens: 7 source tokens, one tail token.
    assert (batch["labels"][1, :7] == -100).all() and batch["labels"][1, 7] != -100


def test_seq2seq_encoder_reads_the_source_and_labels_are_the_tail(tiny_t5):
    tokenizer = _tokenizer(tiny_t5)
    add_special_tokens(tokenizer, ["xIntent", "xNeed"])
    batch = TripleCollator(tokenizer, "seq2seq", max_length=64)(ROWS)
    for row, raw in enumerate(ROWS):
        tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][row])
        assert f"<{raw['relation']}>" in tokens and GEN_TOKEN in tokens
        labelled = [t for t in batch["labels"][row].tolist() if t != -100]
        assert labelled[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(labelled, skip_special_tokens=True) == raw["tail"]
    label_mask = batch["labels"] != -100
    assert batch["num_tokens"] == int(batch["attention_mask"].sum() + label_mask.sum())
    # The shorter tail is padded with -100.
    assert label_mask[1].sum() < label_mask[0].sum()


def test_rows_are_read_from_parquet_in_batches(student_corpus, write_triples, tmp_path):
    rows = TripleRows(student_corpus[0])
    assert len(rows) == 128 and rows.relations() == ["xIntent", "xNeed"]
    assert rows.__getitems__([0, 3]) == [rows[0], rows[3]]
    assert set(rows[1]) == {"head", "relation", "tail"}
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"head": ["a"], "tail": ["b"]}), tmp_path / "bad.parquet")
    with pytest.raises(StudentError, match="lacks the column"):
        TripleRows(tmp_path / "bad.parquet")


def test_batches_are_random_rows_of_similar_length():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 200, size=1000)
    sampler = LengthGroupedSampler(lengths, batch_size=16, seed=3)
    sampler.set_epoch(1)
    order = list(sampler)
    assert sorted(order) == list(range(1000))  # every row once
    assert list(sampler) == order  # an epoch's order depends on the seed and epoch only
    sampler.set_epoch(2)
    assert list(sampler) != order
    batches = [order[i : i + 16] for i in range(0, 1000, 16)]
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    shuffled = rng.permutation(1000)
    random_spread = np.mean([np.ptp(lengths[shuffled[i : i + 16]]) for i in range(0, 1000, 16)])
    assert spread < random_spread / 4
    # Not sorted overall: the first batches are not the longest or the shortest rows.
    means = [np.mean(lengths[b]) for b in batches[:10]]
    assert means != sorted(means) and means != sorted(means, reverse=True)


def test_detect_architecture(tiny_gpt2, tiny_t5, tmp_path):
    assert detect_architecture(tiny_gpt2) == "causal"
    assert detect_architecture(tiny_t5) == "seq2seq"
    with pytest.raises(StudentError, match="cannot load the base model .*nothing is downloaded"):
        detect_architecture(str(tmp_path / "no-such-model"))


# --- training -------------------------------------------------------------------------------


def test_gpt2_loss_falls_and_the_folder_is_a_transformers_model(trained_gpt2):
    result, work_dir, seen = trained_gpt2
    assert result.architecture == "causal" and not result.stopped
    assert result.steps == result.total_steps == 48 and result.resumed_from_step == 0
    losses = [loss for _, loss in result.loss_history]
    assert [step for step, _ in result.loss_history] == list(range(1, 49))
    assert losses[-1] < losses[0] - 1.0
    assert result.train_loss == losses[-1]
    assert result.eval_loss is not None and result.eval_loss < losses[0]
    assert result.tokens > 0 and result.tokens_per_second > 0 and result.parameters > 0
    assert result.precision == "fp32"
    # Every optimizer step reported, with an ETA once a step was timed.
    assert [p.step for p in seen] == list(range(1, 49))
    assert all(p.total_steps == 48 for p in seen)
    assert seen[-1].tokens == result.tokens and seen[-1].eta_seconds == 0
    assert math.isclose(seen[-1].epoch, 6.0)
    assert json.loads((work_dir / "loss_history.json").read_text()) == [
        list(point) for point in result.loss_history
    ]
    model_dir = work_dir / "model"
    meta = json.loads((model_dir / "skd_student.json").read_text())
    assert meta == {
        "architecture": "causal",
        "relations": ["xIntent", "xNeed"],
        "format": "COMET: head <relation> [GEN] tail",
    }
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = _tokenizer(str(model_dir))
    assert model.get_input_embeddings().weight.shape[0] >= len(tokenizer)
    assert "<xIntent>" in tokenizer.get_vocab()


def test_t5_loss_falls(trained_t5):
    result, work_dir = trained_t5
    assert result.architecture == "seq2seq" and result.steps == 48
    losses = [loss for _, loss in result.loss_history]
    assert losses[-1] < losses[0] - 1.0
    assert result.eval_loss is not None and result.eval_loss < losses[0]
    assert json.loads((work_dir / "model" / "skd_student.json").read_text())["architecture"] == (
        "seq2seq"
    )


def test_should_stop_saves_a_checkpoint_and_a_second_call_resumes(
    tiny_gpt2, student_corpus, tmp_path
):
    train, _ = student_corpus
    config = _config(tiny_gpt2, max_steps=8, epochs=1)
    asked = []

    def stop_after_three() -> bool:
        asked.append(1)
        return len(asked) >= 3

    first = train_student(
        config=config,
        train_path=train,
        val_path=None,
        work_dir=tmp_path,
        should_stop=stop_after_three,
    )
    assert first.stopped and first.steps == 3 and first.total_steps == 8
    assert (tmp_path / "checkpoints" / "checkpoint-3" / "trainer_state.json").is_file()
    assert not (tmp_path / "model").exists()
    assert [step for step, _ in first.loss_history] == [1, 2, 3]

    steps = []
    second = train_student(
        config=config,
        train_path=train,
        val_path=None,
        work_dir=tmp_path,
        on_progress=lambda p: steps.append(p.step),
    )
    assert second.resumed_from_step == 3 and not second.stopped
    assert second.steps == second.total_steps == 8 and steps == [4, 5, 6, 7, 8]
    # The curve keeps the steps from before the resume.
    assert [step for step, _ in second.loss_history] == list(range(1, 9))
    assert second.loss_history[:3] == first.loss_history
    assert (tmp_path / "model" / "skd_student.json").is_file()
    kept = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert len(kept) <= 2 and "checkpoint-8" in kept
    # The resumed run saw the same batches, dropout and optimizer state as an uninterrupted
    # one: the same losses.
    whole = train_student(
        config=config, train_path=train, val_path=None, work_dir=tmp_path / "whole"
    )
    assert [loss for _, loss in second.loss_history] == pytest.approx(
        [loss for _, loss in whole.loss_history], rel=1e-5
    )


def test_an_incomplete_checkpoint_is_not_resumed(tiny_gpt2, student_corpus, tmp_path):
    (tmp_path / "checkpoints" / "checkpoint-5").mkdir(parents=True)  # killed while saving
    result = train_student(
        config=_config(tiny_gpt2, max_steps=2, bf16=True, group_by_length=True),
        train_path=student_corpus[0],
        val_path=None,
        work_dir=tmp_path,
    )
    assert result.resumed_from_step == 0 and result.steps == 2
    assert not (tmp_path / "checkpoints" / "checkpoint-5").exists()
    # bf16 where the CPU computes it natively, else fp32 without a fuss.
    assert result.precision == ("bf16" if bf16_supported(torch.device("cpu")) else "fp32")


def test_a_missing_cuda_is_a_clear_error(tiny_gpt2, student_corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(StudentError, match="no CUDA GPU"):
        train_student(
            config=_config(tiny_gpt2, device="cuda"),
            train_path=student_corpus[0],
            val_path=None,
            work_dir=tmp_path,
        )


# --- generation -----------------------------------------------------------------------------


def test_greedy_learns_the_corpus_and_batching_does_not_change_it(trained_gpt2):
    _, work_dir, _ = trained_gpt2
    model_dir = work_dir / "model"
    calls = []
    batched = generate_tails(
        model_dir=model_dir,
        pairs=PAIRS,
        n=3,
        batch_size=2,
        device="cpu",
        on_progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(2, 6), (4, 6), (6, 6)]  # three batches, never one prompt at a time
    assert [len(t) for t in batched.tails] == [1] * 6  # greedy: one tail whatever n is
    assert batched.tails[0] == ["to be full"] and batched.tails[1] == ["to buy food"]
    assert batched.new_tokens > 0 and batched.seconds > 0


def test_left_padding_keeps_greedy_tails_independent_of_batch_mates(tiny_gpt2):
    # An untrained model is sensitive to every input position, so a prompt padded on the
    # wrong side would come out different from the same prompt alone.
    options = dict(model_dir=tiny_gpt2, device="cpu", max_new_tokens=6)
    batched = generate_tails(pairs=PAIRS, batch_size=len(PAIRS), **options).tails
    alone = [generate_tails(pairs=[pair], **options).tails[0] for pair in PAIRS]
    assert alone == batched and all(len(t) == 1 for t in batched)


def test_beam_and_sample_return_n_distinct_tails(trained_gpt2, trained_t5):
    for model_dir in (trained_gpt2[1] / "model", trained_t5[1] / "model"):
        beam = generate_tails(
            model_dir=model_dir, pairs=PAIRS, decoding="beam", n=3, num_beams=4, device="cpu"
        )
        # Hot sampling, so that three samples are three different tails.
        hot = dict(decoding="sample", n=3, seed=7, temperature=20.0, top_p=1.0)
        sample = generate_tails(
            model_dir=model_dir, pairs=PAIRS, max_new_tokens=6, device="cpu", **hot
        )
        for result in (beam, sample):
            assert [len(t) for t in result.tails] == [3] * len(PAIRS)
            for tails in result.tails:
                assert len(set(tails)) == 3
                assert all(t == t.strip() and t and "\n" not in t for t in tails)
        again = generate_tails(
            model_dir=model_dir, pairs=PAIRS, max_new_tokens=6, device="cpu", **hot
        )
        assert again.tails == sample.tails  # the seed decides


def test_t5_greedy_learns_the_corpus(trained_t5):
    result = generate_tails(model_dir=trained_t5[1] / "model", pairs=PAIRS[:2], device="cpu")
    assert result.tails == [["to be full"], ["to buy food"]]


def test_generation_errors(trained_gpt2, tmp_path):
    with pytest.raises(StudentError, match="decoding must be"):
        generate_tails(model_dir=trained_gpt2[1] / "model", pairs=PAIRS, decoding="nucleus")
    with pytest.raises(StudentError, match="cannot load the student model"):
        generate_tails(model_dir=tmp_path, pairs=PAIRS, device="cpu")
    assert generate_tails(model_dir=tmp_path, pairs=[], device="cpu").tails == []


# --- measures -------------------------------------------------------------------------------


def test_distinct_n():
    assert measures.distinct_n(["a b a b"], 1) == 0.5  # {a, b} of 4 unigrams
    assert measures.distinct_n(["a b a b"], 2) == 2 / 3  # {a b, b a} of 3 bigrams
    assert measures.distinct_n(["A b", "a B"], 1) == 0.5  # lowercased
    assert measures.distinct_n(["a b", "c"], 2) == 1.0  # no bigram across texts
    assert measures.distinct_n([], 1) is None and measures.distinct_n(["a"], 2) is None


def test_novelty():
    training = {"to eat", "to sleep"}
    assert measures.novelty(["To eat ", "to run", "to run"], training) == 2 / 3
    # Two tails the corpus would fold into one are not novel either.
    assert measures.novelty(["To  eat.", "to sleep!"], training) == 0.0
    assert measures.novelty(["to sleep"], training) == 0.0
    assert measures.novelty([], training) == 0.0


def test_bleu_by_hand():
    # One sentence against "the cat sat on a mat": n-gram precisions 5/6, 3/5, 2/4, 1/3,
    # equal lengths (no brevity penalty): BLEU = (5/6 · 3/5 · 1/2 · 1/3) ** (1/4) = 12**-0.25.
    score = measures.bleu(["the cat sat on the mat"], [["the cat sat on a mat"]])
    assert score == pytest.approx(100 * 12**-0.25, abs=1e-6)
    # Several references per pair: the matching one counts; pairs without any are left out.
    assert measures.bleu(
        ["x y z w", "he goes to the shop"], [[], ["nothing alike here", "he goes to the shop"]]
    ) == pytest.approx(100)
    assert measures.bleu(["a b c d"], [["e f g h"]]) == pytest.approx(0)
    assert measures.bleu(["a"], [[]]) is None


def test_rouge_l_by_hand():
    # LCS("a b c d", "a c d e") = "a c d": P = R = 3/4, F = 0.75; the best reference counts.
    assert measures.rouge_l(["a b c d"], [["z", "a c d e"]]) == pytest.approx(75.0)
    assert measures.rouge_l(["a b c d", "to eat"], [["a c d e"], ["to eat"]]) == pytest.approx(87.5)
    assert measures.rouge_l(["a b"], [[]]) is None
    with pytest.raises(ValueError):
        measures.rouge_l(["a"], [])


def test_the_ml_package_imports_no_django():
    import subprocess
    import sys

    code = (
        "import sys; import distillation.ml.training, distillation.ml.generating, "
        "distillation.ml.measures, distillation.ml.formatting; "
        "print('django' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_a_student_trains_in_one_process_unless_its_host_has_several_gpus():
    import torch

    from distillation.ml.parallel import launch_command, processes_for

    assert processes_for("cpu") == 1
    assert processes_for("cuda:1") == 1  # a run pinned to one GPU
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert processes_for("auto") == max(1, gpus)
    assert processes_for("cpu", forced=2) == 2  # the tests' CPU processes
    command = launch_command(Path("spec.json"), 2)
    assert command[1:4] == ["-m", "torch.distributed.run", "--standalone"]
    assert "--nproc-per-node=2" in command and command[-2:] == [
        "distillation.ml.parallel",
        "spec.json",
    ]
