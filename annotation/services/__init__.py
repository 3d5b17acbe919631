"""Writes of the annotation app, one module per group of use cases (nothing is re-exported
here: import from the module that owns the use case).

- `campaigns`: campaign_create, campaign_grow, campaign_set_status
- `gold`: gold_add_from_reference, gold_add_swapped
- `items`: helpers for the others (items from triples, positions, counts, slots given back)
- `leasing`: assignment_next, assignment_skip, leases_reap (the claim SQL)
- `judgments`: judgment_submit, judgment_undo
- `standing`: annotator_pause (with a reason), annotator_reinstate
- `training`: training_next, training_answer, training_guard (newcomers' training rounds)
- `honesty`: honesty_check (straight-lining, speed; run every few judgments of a submit)
- `membership`: member_add, member_required, member_invite (who belongs to a campaign);
  annotator_deactivate, annotator_activate
- `joining`: join_link_create, join_link_revoke, join (crowd workers arriving by link),
  session_completion (the completion code after a session)
- `adjudication`: item_adjudicate (a researcher's final label)
- `labels`: campaign_import_labels (the `valid` labels an SKD release carries)
- `aggregation`: campaign_aggregate, campaign_aggregate_job_create, campaign_aggregate_job_run

The refusals they raise are in `annotation.errors`.
"""
