"""Writes of the critic, one module per group of use cases:

- `config`: a corpus's critic configuration, and where the critic's artifacts lie
- `embedding`: the embedding cache (the encoder, the store) and the embedding jobs
- `training`: training a version, deciding on and activating it, the training jobs,
  retraining when enough new labels arrived (`critic_tick`)
- `loading`: a version's model loaded from its artifact, ready to score
- `scoring`: rescoring a corpus with the active version, its jobs, the score writer
- `ranges`: a rescoring shared by many workers (ranges of triple ids queued on the
  tier's queue, each leased to one attempt, the set put in force once the last is done)
- `presets`: filter presets (thresholds) and the filtered export with a dataset card
- `jobs`: queueing one waiting job of a kind per corpus

How each tier trains, loads and scores is in `critic.tiers`; torch and scikit-learn
code is in `critic.ml`.
"""
