"""A paginator for tables of millions of rows."""

from django.core.paginator import Paginator
from django.utils.functional import cached_property

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP rows (a LIMITed subquery): a changelist over millions of
    triples shows the first COUNT_CAP of them instead of scanning the table to count."""

    @cached_property
    def count(self) -> int:
        return self.object_list[:COUNT_CAP].count()
