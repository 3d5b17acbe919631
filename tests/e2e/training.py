"""Browser steps shared by the tests of training."""

from pathlib import Path

from playwright.sync_api import expect

from annotation.models import Item


def answer_training_item(page, right: bool) -> None:
    card = page.locator("#judge-card")
    item = Item.objects.get(pk=int(card.locator("input[name=training_item]").input_value()))
    good = item.gold_acceptable == right
    page.keyboard.press("1" if good else "4")  # always/often or invalid
    expect(card.locator("#training-feedback")).to_be_visible()
    expect(card).to_contain_text("Right." if right else "Not quite.")
    if item.gold_reason:
        expect(card.locator(".training-reason")).to_contain_text(item.gold_reason[:30])


def gold_reference(folder: Path) -> Path:
    """A reference file of 24 human-written triples over the test corpus's relations, for
    gold (and so training) items."""
    reference = folder / "references.tsv"
    relations = ("xNeed", "xIntent", "xWant", "oEffect")
    reference.write_text(
        "".join(f"PersonX refers {i}\t{relations[i % 4]}\treference tail {i}\n" for i in range(24))
    )
    return reference
