"""Writes of the distillation app, one module per group of use cases (nothing is
re-exported here: import from the module that owns the use case).

- `runs`: student_run_create, student_run_start, student_run_delete
- `training`: student_train, student_train_job_run (the data snapshot, training in slices)
- `archives`: student_archive, student_archive_name (the trained model as a streamed zip)
- `evaluations`: evaluation_create, evaluation_start, evaluation_execute,
  evaluation_job_run (generation and the measures of the outputs)
- `outputs`: evaluation_outputs_write, evaluation_send_to_annotation (the student's
  outputs as a corpus, and on to annotation)

The refusal they raise is `distillation.errors.DistillationError`; a run's folders are in
`distillation.folders`.
"""
