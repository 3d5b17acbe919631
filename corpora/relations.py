"""The ATOMIC 2020 relations, preloaded by a migration.

`sentence` renders a triple for people, `prompt` asks a teacher for tails,
`verbalization` joins head and tail into text for the critic's encoder.
The seven relations of Symbolic Knowledge Distillation are marked `skd`.
"""

from __future__ import annotations

from typing import TypedDict


class RelationSpec(TypedDict):
    name: str
    category: str
    skd: bool
    sentence: str
    prompt: str
    verbalization: str
    description: str


def _r(name, category, sentence, prompt, verbalization, description, skd=False) -> RelationSpec:
    return RelationSpec(
        name=name,
        category=category,
        skd=skd,
        sentence=sentence,
        prompt=prompt,
        verbalization=verbalization,
        description=description,
    )


ATOMIC_2020_RELATIONS: list[RelationSpec] = [
    _r(
        "xAttr",
        "social",
        "{head}. PersonX is seen as: {tail}",
        "{head}. PersonX is seen as",
        "PersonX is seen as",
        "How PersonX is described or seen by others.",
        skd=True,
    ),
    _r(
        "xEffect",
        "social",
        "{head}. As a result, PersonX: {tail}",
        "{head}. As a result, PersonX",
        "as a result, PersonX will",
        "What happens to PersonX as a result.",
        skd=True,
    ),
    _r(
        "xIntent",
        "social",
        "{head}. Because PersonX wanted: {tail}",
        "{head}. Because PersonX wanted",
        "because PersonX wanted",
        "Why PersonX does this.",
        skd=True,
    ),
    _r(
        "xNeed",
        "social",
        "{head}. Before that, PersonX needed: {tail}",
        "{head}. Before that, PersonX needed",
        "but before, PersonX needed",
        "What PersonX needed to do or have before.",
        skd=True,
    ),
    _r(
        "xReact",
        "social",
        "{head}. As a result, PersonX feels: {tail}",
        "{head}. As a result, PersonX feels",
        "as a result, PersonX feels",
        "How PersonX feels afterwards.",
        skd=True,
    ),
    _r(
        "xWant",
        "social",
        "{head}. As a result, PersonX wants: {tail}",
        "{head}. As a result, PersonX wants",
        "as a result, PersonX wants",
        "What PersonX wants to do afterwards.",
        skd=True,
    ),
    _r(
        "HinderedBy",
        "event",
        "{head}. This would not happen if: {tail}",
        "{head}. This would not happen if",
        "can be hindered by",
        "What could stop the event from happening.",
        skd=True,
    ),
    _r(
        "oEffect",
        "social",
        "{head}. As a result, others: {tail}",
        "{head}. As a result, others",
        "as a result, Y or others will",
        "What happens to others as a result.",
    ),
    _r(
        "oReact",
        "social",
        "{head}. As a result, others feel: {tail}",
        "{head}. As a result, others feel",
        "as a result, Y or others feel",
        "How others feel afterwards.",
    ),
    _r(
        "oWant",
        "social",
        "{head}. As a result, others want: {tail}",
        "{head}. As a result, others want",
        "as a result, Y or others want",
        "What others want to do afterwards.",
    ),
    _r(
        "xReason",
        "event",
        "{head}. This happens because: {tail}",
        "{head}. This happens because",
        "because",
        "The reason behind the event.",
    ),
    _r(
        "isAfter",
        "event",
        "{head}. This happens after: {tail}",
        "{head}. This happens after",
        "happens after",
        "An event that comes before this one.",
    ),
    _r(
        "isBefore",
        "event",
        "{head}. This happens before: {tail}",
        "{head}. This happens before",
        "happens before",
        "An event that comes after this one.",
    ),
    _r(
        "HasSubEvent",
        "event",
        "{head}. This includes: {tail}",
        "{head}. This includes",
        "includes the event or action",
        "A smaller event that is part of this one.",
    ),
    _r(
        "isFilledBy",
        "event",
        "{head}. The blank can be filled by: {tail}",
        "{head}. The blank can be filled by",
        "blank can be filled by",
        "What can fill the blank (___) in the event.",
    ),
    _r(
        "Causes",
        "event",
        "{head}. This causes: {tail}",
        "{head}. This causes",
        "causes",
        "What the event causes.",
    ),
    _r(
        "ObjectUse",
        "physical",
        "{head} is used for: {tail}",
        "{head} is used for",
        "is used for",
        "What the object is used for.",
    ),
    _r(
        "AtLocation",
        "physical",
        "{head} is found at: {tail}",
        "{head} is found at",
        "located or found at",
        "Where the thing is found.",
    ),
    _r(
        "MadeUpOf",
        "physical",
        "{head} is made up of: {tail}",
        "{head} is made up of",
        "made up of",
        "What the thing is made of.",
    ),
    _r(
        "HasProperty",
        "physical",
        "{head} has the property: {tail}",
        "{head} has the property",
        "can be characterized by being",
        "A property the thing has.",
    ),
    _r(
        "CapableOf",
        "physical",
        "{head} is capable of: {tail}",
        "{head} is capable of",
        "is capable of",
        "What the thing can do.",
    ),
    _r(
        "Desires",
        "physical",
        "{head} desires: {tail}",
        "{head} desires",
        "desires",
        "What the thing desires.",
    ),
    _r(
        "NotDesires",
        "physical",
        "{head} does not desire: {tail}",
        "{head} does not desire",
        "does not desire",
        "What the thing does not desire.",
    ),
]

SKD_RELATIONS = [spec["name"] for spec in ATOMIC_2020_RELATIONS if spec["skd"]]
