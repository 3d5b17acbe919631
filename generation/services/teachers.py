"""Teachers: saving one (checked, if asked), the backend that talks to it, and a check
that it answers."""

from __future__ import annotations

import logging
import os
from decimal import Decimal

from ..ml.http_teacher import OpenAICompatibleTeacher, TeacherError
from ..models import Teacher

logger = logging.getLogger(__name__)


def teacher_create(*, check: bool = False, **fields) -> Teacher:
    """Save a teacher; with ``check``, only once teacher_check passed (TeacherError else)."""
    for price in ("prompt_price_per_1k", "completion_price_per_1k"):
        if isinstance(fields.get(price), float):  # 0.15 as a float is not 0.15 exactly
            fields[price] = Decimal(str(fields[price]))
    teacher = Teacher(**fields)
    teacher.full_clean()
    if check:
        teacher_check(teacher)
    teacher.save()
    return teacher


def teacher_backend(teacher: Teacher):
    """The client for a teacher; a TeacherError names what is wrong with its settings."""
    if teacher.backend == Teacher.Backend.OPENAI:
        if not teacher.base_url:
            raise TeacherError(f"Teacher '{teacher.name}': the HTTP backend needs a base URL.")
        api_key = None
        if teacher.api_key_env:
            api_key = os.environ.get(teacher.api_key_env)
            if not api_key:
                raise TeacherError(
                    f"Teacher '{teacher.name}': the environment variable "
                    f"{teacher.api_key_env} (its API key) is not set where the work runs."
                )
        return OpenAICompatibleTeacher(
            base_url=teacher.base_url,
            model=teacher.model,
            endpoint=teacher.endpoint,
            api_key=api_key,
            concurrency=teacher.concurrency,
            timeout=teacher.timeout,
            max_answer_bytes=teacher.max_answer_bytes,
        )
    from ..ml.local_teacher import TransformersTeacher

    return TransformersTeacher(
        teacher.model, device=teacher.device or None, dtype=teacher.dtype or "auto"
    )


def teacher_check(teacher: Teacher) -> str:
    """Fail before any work when the teacher cannot work; say what was checked.

    An HTTP teacher must answer one real request of its endpoint and model (a completion of
    one token): a wrong key, base URL or model name fails here. A transformers teacher's
    tokenizer and config must load (its weights are left to the worker that runs it)."""
    if teacher.backend == Teacher.Backend.TRANSFORMERS:
        from ..ml.local_check import local_model_check

        try:
            found = local_model_check(teacher.model)
        except TeacherError as exc:
            raise TeacherError(f"Teacher '{teacher.name}': {exc}") from exc
        return (
            f"Teacher {teacher.name}: {found}. Its weights are loaded by the worker when a run "
            "starts."
        )
    backend = teacher_backend(teacher)
    try:
        backend.check_sync()
    except TeacherError as exc:
        raise TeacherError(f"Teacher '{teacher.name}': {exc}") from exc
    return (
        f"Teacher {teacher.name} answered a test completion of model '{teacher.model}' at "
        f"{backend._url()}."
    )
