"""The model card (README.md) written into a trained student's transformers folder."""

from __future__ import annotations

import json
from pathlib import Path

import orjson

from .ml.formatting import GEN_TOKEN, source_text
from .models import StudentRun


def _num(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _model_relations(run: StudentRun) -> list[str]:
    """The relations the trained model has tokens for (written beside its weights)."""
    from .folders import model_folder
    from .ml.training import STUDENT_FILE

    try:
        meta = orjson.loads((model_folder(run) / STUDENT_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return []
    return list(meta.get("relations") or [])


def card_data(*, run: StudentRun) -> dict:
    from .selectors import run_lineage

    evaluations = [
        {
            "corpus": e.corpus.name,
            "decoding": e.decoding,
            "pairs": e.pairs,
            "metrics": {k: v for k, v in e.metrics.get("overall", {}).items()},
            "critic": (e.metrics.get("critic") or {}).get("overall"),
        }
        for e in run.evaluations.select_related("corpus")
        if e.metrics
    ]
    return {
        "name": run.name,
        "base_model": run.base_model,
        "architecture": run.architecture,
        "relations": _model_relations(run),
        "parameters": run.parameters,
        "format": "COMET: '<head> <relation> [GEN]' then the tail; loss on the tail only",
        "hyperparameters": run.hyperparameters,
        "precision": run.precision,
        "training": {
            "examples": run.train_examples,
            "validation_examples": run.val_examples,
            "steps": run.steps,
            "tokens": run.tokens,
            "train_loss": run.train_loss,
            "eval_loss": run.eval_loss,
            "seconds": run.seconds,
            "tokens_per_second": run.tokens_per_second,
        },
        "lineage": run_lineage(run=run),
        "evaluations": evaluations,
    }


def card_markdown(data: dict) -> str:
    lineage, training = data["lineage"], data["training"]
    data_line = f"corpus '{lineage['corpus']['name']}', split '{lineage['train_split']}'"
    cut = lineage.get("cut")
    if cut:
        data_line += (
            f", cut by preset '{cut['preset'] or '(deleted)'}' at threshold {cut['threshold']}"
            + (
                f" (per relation {cut['relation_thresholds']})"
                if cut["relation_thresholds"]
                else ""
            )
            + f" of critic v{cut['critic_version']} ({cut['critic_tier']}, trained on "
            f"{cut['critic_labels']:,} labels)"
        )
    else:
        data_line += ", unfiltered"
    lines = [
        "---",
        "library_name: transformers",
        "tags: [commonsense, symbolic-knowledge-distillation, comet]",
        "---",
        "",
        f"# {data['name']}",
        "",
        f"A {data['architecture']} student fine-tuned from `{data['base_model']}` "
        f"({data['parameters']:,} parameters) on commonsense triples in the COMET format: "
        "the input is `<head> <relation> [GEN]` and the model writes the tail.",
        "",
        "## Data",
        "",
        f"- {data_line}",
        f"- {training['examples']:,} training triples, {training['validation_examples']:,} "
        "for validation",
    ]
    for run in lineage.get("generation_runs", []):
        lines.append(
            f"- teacher run {run['id']}: teacher '{run['teacher']}' ({run['model']}), "
            f"few-shot pool '{run['pool']}', {run['triples']:,} triples"
        )
    for job in lineage.get("imports", []):
        lines.append(
            f"- imported from {Path(job['file']).name} ({job['format']}, "
            f"{job['imported']:,} triples, {job['at'][:10]})"
        )
    hp = data["hyperparameters"]
    lines += [
        "",
        "## Training",
        "",
        f"- epochs {hp['epochs']}, learning rate {hp['learning_rate']}, batch size "
        f"{hp['batch_size']} × {hp['grad_accum']} accumulation, max length {hp['max_length']}, "
        f"seed {hp['seed']}, precision {data['precision'] or 'fp32'}",
        f"- {training['steps']:,} steps, {training['tokens']:,} tokens, "
        f"{_num(training['tokens_per_second'], 0)} tokens/s",
        f"- final training loss {_num(training['train_loss'])}, validation loss "
        f"{_num(training['eval_loss'])}",
    ]
    if data["evaluations"]:
        lines += [
            "",
            "## Evaluation",
            "",
            "| outputs | decoding | pairs | critic acceptance | distinct-2 | novelty | BLEU "
            "| ROUGE-L |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for e in data["evaluations"]:
            m, critic = e["metrics"], e["critic"] or {}
            lines.append(
                f"| {e['corpus']} | {e['decoding']} | {e['pairs']:,} "
                f"| {_num(critic.get('acceptance'))} | {_num(m.get('distinct_2'))} "
                f"| {_num(m.get('novelty'))} | {_num(m.get('bleu'), 1)} "
                f"| {_num(m.get('rouge_l'), 1)} |"
            )
    lines += ["", "## Use", "", *usage_snippet(data), ""]
    return "\n".join(lines)


def usage_snippet(data: dict) -> list[str]:
    """A complete example, from loading the folder to the printed tail, decoding as the
    studio's evaluations do (the tail is what follows the prompt, up to the end token)."""
    relations = data.get("relations") or ["xNeed"]
    relation = "xNeed" if "xNeed" in relations else relations[0]
    prompt = source_text("PersonX goes fishing", relation)
    causal = data["architecture"] != "seq2seq"
    loader = "AutoModelForCausalLM" if causal else "AutoModelForSeq2SeqLM"
    lines = [
        "```python",
        f"from transformers import {loader}, AutoTokenizer",
        "",
        f"PATH = {json.dumps(data['name'])}  # the folder holding this README.md, unzipped",
        "tokenizer = AutoTokenizer.from_pretrained(PATH)",
        f"model = {loader}.from_pretrained(PATH)",
        "",
        f"# The COMET input: head, the relation's token, {GEN_TOKEN}; the model writes the tail.",
    ]
    if causal:
        lines += [
            f'inputs = tokenizer("{prompt}", return_tensors="pt", add_special_tokens=False)',
            "output = model.generate(",
            "    **inputs,",
            "    max_new_tokens=24,",
            "    num_beams=5,",
            "    eos_token_id=tokenizer.eos_token_id,",
            "    pad_token_id=tokenizer.pad_token_id,",
            "    begin_suppress_tokens=[tokenizer.eos_token_id],  # a tail is never empty",
            ")",
            'new_tokens = output[0, inputs["input_ids"].shape[1] :]',
        ]
    else:
        lines += [
            f'inputs = tokenizer("{prompt}", return_tensors="pt")',
            "output = model.generate(",
            "    **inputs,",
            "    max_new_tokens=24,",
            "    num_beams=5,",
            "    begin_suppress_tokens=[tokenizer.eos_token_id],  # a tail is never empty",
            ")",
            "new_tokens = output[0]",
        ]
    lines += [
        "tail = tokenizer.decode(new_tokens, skip_special_tokens=True)",
        'print(tail.split("\\n")[0].strip())',
        "```",
    ]
    return lines


def model_card_write(*, run: StudentRun) -> Path:
    from .folders import model_folder

    data = card_data(run=run)
    folder = model_folder(run)
    (folder / "README.md").write_text(card_markdown(data), encoding="utf-8")
    (folder / "skd_card.json").write_bytes(
        orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str)
    )
    return folder / "README.md"
