"""Few-shot prompts and the cleaning of what a teacher writes."""

import random

from generation.ml.prompts import (
    clean_outputs,
    event_prompt,
    inference_prompt,
    normalize,
    parse_numbered_list,
    prompt_hash,
)

SEEDS = [f"PersonX does seed thing {i}" for i in range(20)]
EXAMPLES = [("PersonX goes fishing", "a fishing rod"), ("PersonX bakes a cake", "flour")]


def test_prompts_are_reproducible_from_a_seed():
    a = event_prompt(SEEDS, 5, random.Random(7))
    assert a == event_prompt(SEEDS, 5, random.Random(7))
    assert a != event_prompt(SEEDS, 5, random.Random(8))
    assert a.splitlines()[0].startswith("1. PersonX") and a.endswith("\n6.")
    assert prompt_hash(a) == prompt_hash(a) and len(prompt_hash(a)) == 16

    template = "{head}. Before that, PersonX needed"
    b = inference_prompt(template, EXAMPLES, "PersonX swims", 2, random.Random(1))
    assert b.endswith("PersonX swims. Before that, PersonX needed")
    assert "PersonX goes fishing. Before that, PersonX needed a fishing rod." in b


def test_parsing_is_defensive():
    text = ' PersonX paints a fence\n7. PersonX buys bread\n8) "PersonX sings"\nThat is all.'
    assert parse_numbered_list(text) == [
        "PersonX paints a fence",
        "PersonX buys bread",
        '"PersonX sings"',
    ]
    assert normalize(' 1. "to have a rod."\nmore text') == "to have a rod"
    assert normalize("  - to  swim ,") == "to swim"


def test_cleaning_counts_each_reason():
    outputs = [
        "",
        "none",
        "to buy a rod",
        "To buy a rod.",
        "PersonX goes fishing",
        "a " * 30,
        "to relax",
    ]
    cleaned = clean_outputs(outputs, head="PersonX goes fishing", seen=["to relax"])
    assert cleaned.kept == ["to buy a rod"]
    assert cleaned.kept_index == [2]
    assert cleaned.dropped == {
        "empty": 1,
        "none": 1,
        "duplicate": 2,
        "copies the head": 1,
        "too long": 1,
    }


def test_a_single_word_longer_than_a_tail_may_be_is_dropped_as_too_long():
    long_word = "x" * 2000
    cleaned = clean_outputs([long_word, "to rest", "y" * 500, "z" * 501])
    assert cleaned.kept == ["to rest", "y" * 500]
    assert cleaned.dropped == {"too long": 2}


def test_tails_the_corpus_would_merge_are_duplicates_already_when_cleaning():
    cleaned = clean_outputs(["to eat", "To  eat!", "to eat?", "to eat ;", "to drink"])
    assert cleaned.kept == ["to eat", "to drink"]
    assert cleaned.dropped == {"duplicate": 3}


def test_control_characters_become_spaces_and_a_line_of_punctuation_is_empty():
    cleaned = clean_outputs(["to\x00rest\x07 now", "tab\there", "!!!", "\ud800oops"])
    assert cleaned.kept == ["to rest now", "tab here", "oops"]
    assert cleaned.dropped == {"empty": 1}
