"""The rules a service checks on its input (bounds, choices, lengths, required), in the
words Django's validators and form fields use, so that the page's form, the API's
serializer and the command line refuse the same input with the same message.

An app keeps its bounds in one table (`{"field": (low, high)}`, None for no bound); the
service calls `bounds_check` with it, and the form and the serializer take their
`min_value`/`max_value` from it (`bounds`, `form_fields_bound`), so they cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator

from .errors import AppError

Limits = Mapping[str, tuple[float | None, float | None]]
# Seeds are stored in 32-bit integer columns.
MAX_SEED = 2**31 - 1

REQUIRED_MESSAGE = "This field is required."
# Django's form fields say this of a value not among the choices; DRF's ChoiceField says it
# too with `CHOICE_ERRORS` (its own words are '"x" is not a valid choice.').
CHOICE_MESSAGE = "Select a valid choice. %(value)s is not one of the available choices."
CHOICE_ERRORS = {
    "invalid_choice": "Select a valid choice. {input} is not one of the available choices."
}


def bounds(limits: Limits, field: str) -> dict:
    """`min_value`/`max_value` keyword arguments for a form or serializer number field."""
    low, high = limits[field]
    kwargs = {}
    if low is not None:
        kwargs["min_value"] = low
    if high is not None:
        kwargs["max_value"] = high
    return kwargs


def bounds_check(limits: Limits, *, error: type[AppError], **values) -> None:
    """`error` naming the first value out of its bounds (None values are not checked)."""
    for field, value in values.items():
        if value is None:
            continue
        low, high = limits[field]
        try:
            if low is not None:
                MinValueValidator(low)(value)
            if high is not None:
                MaxValueValidator(high)(value)
        except ValidationError as exc:
            raise error(exc.messages[0], field=field) from None


def choice_check(value, choices: Iterable, *, field: str, error: type[AppError]) -> None:
    if value not in set(choices):
        raise error(CHOICE_MESSAGE % {"value": value}, field=field)


def text_check(value: str | None, *, max_length: int, field: str, error: type[AppError]) -> None:
    """A required text of at most `max_length` characters."""
    if value is None or not str(value).strip():
        raise error(REQUIRED_MESSAGE, field=field)
    try:
        MaxLengthValidator(max_length)(value)
    except ValidationError as exc:
        raise error(exc.messages[0], field=field) from None


def form_fields_bound(fields: Mapping, limits: Limits) -> None:
    """Give a form's number fields the bounds of `limits`, in place of those a model gave
    them (for model forms, whose fields are built from the model)."""
    for name in limits:
        field = fields.get(name)
        if field is None:
            continue
        field.validators = [
            v for v in field.validators if not isinstance(v, MinValueValidator | MaxValueValidator)
        ]
        low, high = limits[name]
        field.min_value, field.max_value = low, high
        for attr, limit, validator in (
            ("min", low, MinValueValidator),
            ("max", high, MaxValueValidator),
        ):
            if limit is None:
                field.widget.attrs.pop(attr, None)
            else:
                field.validators.append(validator(limit))
                field.widget.attrs[attr] = limit
