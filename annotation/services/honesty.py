"""Honesty checks: an annotator is paused, with the reason stated, for

- straight-lining: the same answer `straight_line_run` times in a row, or (after
  ENTROPY_MIN_JUDGMENTS) answers whose entropy is far below the crowd's;
- speed: (after SPEED_MIN_JUDGMENTS) a median time per judgment below `speed_floor` times
  the crowd's median (time per judgment is measured on the server, lease to submit);
- low gold accuracy (in `judgments._score_gold`).

The judging path stays light: the checks run only on every CHECK_EVERY-th judgment id and
on gold answers (which take the general submit path anyway), with one indexed query over
the annotator's last judgments (index `judgment_recent`); the crowd's figures are cached
per campaign. Reinstated annotators are not paused by them again.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from time import monotonic

from django.core.cache import cache
from django.db import connection

from ..models import Campaign, CampaignAnnotator, Judgment, JudgmentValue
from .standing import annotator_pause

CHECK_EVERY = 5
WINDOW = 60  # the annotator's last judgments looked at
ENTROPY_MIN_JUDGMENTS = 30
ENTROPY_SHARE = 0.25  # paused below this share of the crowd's answer entropy (bits)
SPEED_MIN_JUDGMENTS = 20
CROWD_SAMPLE = 2000  # the campaign's last judgments that make "the crowd"
CROWD_MIN_JUDGMENTS = 20  # others' judgments needed before comparing with them
CROWD_CACHE_SECONDS = 60
CROWD_MEMORY_SECONDS = 10  # in each process, in front of the shared cache


def honesty_due(*, judgment_id: int, is_gold: bool) -> bool:
    """Whether a submit should run the checks (cheap: no query)."""
    return is_gold or judgment_id % CHECK_EVERY == 0


def _entropy(values: list[int]) -> float:
    counts = Counter(values)
    total = len(values)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def _seconds(value: float) -> str:
    return f"{value:.1f}" if value >= 0.1 else f"{value:.3f}"


@dataclass
class _Crowd:
    """The campaign's crowd as this process last read it, and what each annotator's checks
    compared with (the crowd less that annotator), worked out once per memory window."""

    until: float
    rows: list[tuple[int, int, float | None]]
    others: dict[int, tuple[int, float, float | None]] = field(default_factory=dict)

    def figures_without(self, annotator_id: int) -> tuple[int, float, float | None]:
        """(how many judgments the others made, their answers' entropy, their median
        seconds or None when too few were timed)."""
        found = self.others.get(annotator_id)
        if found is None:
            values = [v for who, v, _ in self.rows if who != annotator_id]
            times = [s for who, _, s in self.rows if who != annotator_id and s is not None]
            median = statistics.median(times) if len(times) >= CROWD_MIN_JUDGMENTS else None
            found = (len(values), _entropy(values) if values else 0.0, median)
            self.others[annotator_id] = found
        return found


# Per campaign, in each process in front of the shared cache: it spares the database a
# read and this process unpickling 2,000 rows and walking them on every check.
_crowds: dict[int, _Crowd] = {}


def forget_crowds() -> None:
    """Drop what this process remembers of the crowds (tests; a campaign's reset)."""
    _crowds.clear()


def _crowd(campaign: Campaign) -> _Crowd:
    now = monotonic()
    mine = _crowds.get(campaign.pk)
    if mine is not None and mine.until > now:
        return mine
    if len(_crowds) > 1000:
        _crowds.clear()
    mine = _crowds[campaign.pk] = _Crowd(now + CROWD_MEMORY_SECONDS, _crowd_shared(campaign))
    return mine


def _crowd_shared(campaign: Campaign) -> list[tuple[int, int, float | None]]:
    key = f"annotation:crowd:{campaign.pk}"
    rows = cache.get(key)
    if rows is None:
        rows = list(
            Judgment.objects.filter(campaign=campaign)
            .order_by("-pk")
            .values_list("annotator_id", "value", "seconds")[:CROWD_SAMPLE]
        )
        cache.set(key, rows, CROWD_CACHE_SECONDS)
    return rows


_RECENT = (
    "SELECT value, seconds FROM {table} WHERE campaign_id = %s AND annotator_id = %s"
    " ORDER BY created_at DESC LIMIT %s"
)


def _recent(campaign: Campaign, annotator_id: int) -> list[tuple[int, float | None]]:
    """The annotator's last judgments in the campaign, newest first (index
    judgment_recent); plain SQL, since this runs on every fifth judgment."""
    with connection.cursor() as cursor:
        cursor.execute(
            _RECENT.format(table=Judgment._meta.db_table),
            [campaign.pk, annotator_id, max(WINDOW, campaign.straight_line_run)],
        )
        return cursor.fetchall()


def honesty_reason(*, campaign: Campaign, annotator) -> str:
    """Why this annotator should be paused, or "" when nothing is wrong."""
    me = annotator.pk  # read once: a model's pk property costs more than the loops here
    recent = _recent(campaign, me)
    values = [value for value, _ in recent]
    if values:
        run = next((i for i, v in enumerate(values) if v != values[0]), len(values))
        if run >= campaign.straight_line_run:
            label = JudgmentValue(values[0]).label
            return f"straight-lining: the same answer ({label}) {run} times in a row"
    if len(values) < min(ENTROPY_MIN_JUDGMENTS, SPEED_MIN_JUDGMENTS):
        return ""
    counted, their_entropy, their_median = _crowd(campaign).figures_without(me)
    if counted < CROWD_MIN_JUDGMENTS:
        return ""
    if len(values) >= ENTROPY_MIN_JUDGMENTS:
        mine = _entropy(values)
        if their_entropy > 0 and mine < ENTROPY_SHARE * their_entropy:
            return (
                f"straight-lining: answers far less varied than the crowd's "
                f"(entropy {mine:.2f} bits against {their_entropy:.2f})"
            )
    if campaign.speed_floor and len(values) >= SPEED_MIN_JUDGMENTS and their_median:
        my_times = [s for _, s in recent if s is not None]
        if my_times:
            mine = statistics.median(my_times)
            if mine < campaign.speed_floor * their_median:
                return (
                    f"too fast: median {_seconds(mine)} s per judgment against the crowd's "
                    f"{_seconds(their_median)} s"
                )
    return ""


def honesty_check(*, campaign: Campaign, annotator, reinstated: bool | None = None) -> str:
    """Run the checks and pause the annotator if one fails; the reason, or "".

    `reinstated`: given by a caller that has just read the standing (and found the
    annotator a member, not paused), so it is not read again."""
    if reinstated is None:
        standing = (
            CampaignAnnotator.objects.filter(campaign=campaign, annotator=annotator)
            .values_list("paused", "reinstated")
            .first()
        )
        if standing is None or standing[0]:
            return ""
        reinstated = standing[1]
    if reinstated:
        return ""
    reason = honesty_reason(campaign=campaign, annotator=annotator)
    if reason:
        annotator_pause(campaign=campaign, annotator=annotator, reason=reason)
    return reason
