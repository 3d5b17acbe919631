"""Writes for teachers, few-shot pools and generation runs, a module per role:

- `teachers`: save and check a teacher, its backend
- `pools`: few-shot examples
- `runs`: create, estimate, start (as a job) and report a run
- `leases`: one executor per run
- `execution`: sending a run's batches and writing the answers
"""
