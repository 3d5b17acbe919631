"""Label aggregation and inter-annotator agreement, free of Django.

Everything here takes plain ``(item_id, annotator_id, value)`` tuples so it can run on a
``values_list`` queryset, in a Celery task, or in a notebook.
"""
