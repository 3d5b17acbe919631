"""The refusals of the annotation app: each an `AppError`, with the HTTP status and code the
API answers with (see `annotation.apis.refusal_response`)."""

from __future__ import annotations

from core.errors import AppError


class AnnotationError(AppError):
    """A request the rules refuse; the message is meant for the person who made it."""

    code = "refused"


class CampaignClosed(AnnotationError):
    status = 409
    code = "campaign_closed"


class AnnotatorPaused(AnnotationError):
    status = 403
    code = "annotator_paused"


class TrainingRequired(AnnotationError):
    """Real items wait until the annotator has passed the campaign's training (in the
    browser)."""

    status = 403
    code = "training_required"


class LeaseRefused(AnnotationError):
    status = 409
    code = "lease_refused"


class NothingToUndo(AnnotationError):
    status = 409
    code = "nothing_to_undo"


class AssignmentNotFound(AnnotationError):
    status = 404
    code = "assignment_not_found"


class SamplingError(AnnotationError):
    """A campaign's sampling cannot be done: an unknown strategy, or one that needs what
    the corpus lacks (critic scores)."""

    code = "sampling_error"


class NotMember(AnnotationError):
    """An annotator asked for a campaign they do not belong to."""

    status = 403
    code = "not_member"


class JoinLinkNotFound(AnnotationError):
    status = 404
    code = "join_link_not_found"


class JoinLinkGone(AnnotationError):
    """A join link that was revoked, has expired, is used up, or whose campaign closed."""

    status = 410
    code = "join_link_gone"
