"""What the judging page's guidelines say: the scale of the paper (West et al., 2021: four
points and "can't judge"), and for each relation of a campaign an example per answer,
rendered with the relation's own sentence (never its raw template).

The examples are a small table per ATOMIC 2020 relation; a relation without one gets a
generic example.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# (value, key, label, what it means)
SCALE: list[dict[str, Any]] = [
    {
        "value": 2,
        "key": "1",
        "label": "always/often",
        "meaning": "Holds always or most of the time for events like this one.",
    },
    {
        "value": 1,
        "key": "2",
        "label": "sometimes/likely",
        "meaning": "Plausible: holds sometimes, or is likely, though not always.",
    },
    {
        "value": -1,
        "key": "3",
        "label": "farfetched/never",
        "meaning": "Makes sense as a sentence but rarely or never holds for this event.",
    },
    {
        "value": -2,
        "key": "4",
        "label": "invalid",
        "meaning": "Does not make sense: garbled, off topic, or the wrong kind of answer "
        "for the relation.",
    },
    {
        "value": -9,
        "key": "0",
        "label": "can't judge",
        "meaning": "You cannot tell: the event or the answer needs knowledge you do not have, "
        "or is too unclear to judge.",
    },
]

# relation -> (head, [tail for always/often, sometimes/likely, farfetched/never, invalid,
# can't judge])
EXAMPLES: dict[str, tuple[str, list[str]]] = {
    "xNeed": (
        "PersonX goes fishing",
        [
            "a fishing rod",
            "to buy bait",
            "to learn to fly a plane",
            "blue quickly",
            "a barbless circle hook",
        ],
    ),
    "xIntent": (
        "PersonX cooks dinner",
        ["to eat", "to impress a date", "to get fired", "the oven", "to observe Tu B'Shvat"],
    ),
    "xWant": (
        "PersonX finishes the marathon",
        [
            "to rest",
            "to take a photo",
            "to run another one at once",
            "tired legs",
            "to log it on Strava Segments",
        ],
    ),
    "xEffect": (
        "PersonX falls off a bike",
        ["gets hurt", "cries", "wins a prize", "the bike", "gets road rash on the fibula"],
    ),
    "xReact": (
        "PersonX gets a promotion",
        ["happy", "nervous", "ashamed", "the office", "fulfilled in a Heideggerian sense"],
    ),
    "xAttr": (
        "PersonX helps a stranger",
        ["kind", "brave", "selfish", "a stranger", "sonder"],
    ),
    "HinderedBy": (
        "PersonX drives to work",
        [
            "PersonX's car breaks down",
            "there is heavy traffic",
            "it is Tuesday",
            "a car",
            "the ECU throws a P0300",
        ],
    ),
    "oEffect": (
        "PersonX insults PersonY",
        ["feel hurt", "insult PersonX back", "get a raise", "rude", "file a 1099"],
    ),
    "oReact": (
        "PersonX gives PersonY a gift",
        ["happy", "surprised", "angry", "the gift", "verklempt"],
    ),
    "oWant": (
        "PersonX asks PersonY for help",
        [
            "to help PersonX",
            "to ask what is wrong",
            "to leave the country",
            "help",
            "to invoke the Good Samaritan rule",
        ],
    ),
    "xReason": (
        "PersonX takes an umbrella",
        [
            "it is raining",
            "the forecast says rain",
            "it is sunny and dry",
            "umbrella",
            "a front is occluding",
        ],
    ),
    "isAfter": (
        "PersonX eats breakfast",
        [
            "PersonX wakes up",
            "PersonX makes coffee",
            "PersonX goes to bed for the night",
            "breakfast",
            "PersonX does a sun salutation",
        ],
    ),
    "isBefore": (
        "PersonX buys a ticket",
        [
            "PersonX boards the train",
            "PersonX finds a seat",
            "PersonX is born",
            "ticket",
            "PersonX validates at the Entwerter",
        ],
    ),
    "Causes": (
        "PersonX forgets to water the plants",
        [
            "the plants wilt",
            "the leaves turn brown",
            "the plants grow faster",
            "water",
            "chlorosis sets in",
        ],
    ),
    "ObjectUse": (
        "a hammer",
        [
            "driving nails",
            "cracking nuts",
            "brushing teeth",
            "heavy",
            "setting rivets with a bucking bar",
        ],
    ),
    "AtLocation": (
        "a toothbrush",
        ["a bathroom", "a travel bag", "the moon", "brushing", "a go-bag"],
    ),
    "HasSubEvent": (
        "PersonX bakes a cake",
        [
            "mixing the batter",
            "licking the spoon",
            "painting the garage",
            "cake",
            "tempering the ganache",
        ],
    ),
    "isFilledBy": (
        "PersonX eats ___ for breakfast",
        ["cereal", "leftover pizza", "a car tyre", "quickly", "natto"],
    ),
    "MadeUpOf": (
        "a bicycle",
        ["wheels", "a bell", "clouds", "fast", "a derailleur hanger"],
    ),
    "HasProperty": (
        "ice",
        ["cold", "slippery", "hot", "a freezer", "amorphous at low pressure"],
    ),
    "CapableOf": (
        "a dog",
        ["bark", "open a door", "write a novel", "furry", "herd in a trial"],
    ),
    "Desires": (
        "a cat",
        ["food", "to sit in a box", "to take a bath", "whiskers", "silvervine"],
    ),
    "NotDesires": (
        "a child",
        ["to be punished", "to eat vegetables", "to play", "small", "a MMR booster"],
    ),
}

GENERIC = (
    "PersonX goes to the beach",
    [
        "an answer that holds almost every time",
        "an answer that is plausible but not certain",
        "an answer that would hardly ever hold",
        "words that make no sense for the relation",
        "an answer you could only judge with knowledge you lack",
    ],
)


@dataclass(frozen=True)
class RelationGuide:
    name: str
    description: str
    reads_as: str
    head: str  # the examples' event
    example: str  # the first example as a whole sentence
    examples: list[dict[str, Any]]  # {"label", "key", "tail", "sentence"} per answer
    generic: bool


def relation_examples(*, relations) -> list[RelationGuide]:
    """For each relation (a `corpora.models.Relation`), how a triple reads and an example
    per answer of the scale."""
    guides = []
    for relation in relations:
        head, tails = EXAMPLES.get(relation.name, GENERIC)
        generic = relation.name not in EXAMPLES
        examples = [
            {
                "label": point["label"],
                "key": point["key"],
                "tail": tail,
                "sentence": tail if generic else relation.sentence(head, tail),
            }
            for point, tail in zip(SCALE, tails, strict=True)
        ]
        guides.append(
            RelationGuide(
                name=relation.name,
                description=relation.description,
                reads_as=relation.sentence("[the event]", "[the answer]"),
                head=head,
                example=examples[0]["sentence"],
                examples=examples,
                generic=generic,
            )
        )
    return guides
