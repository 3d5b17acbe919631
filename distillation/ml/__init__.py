"""The student's machine learning: COMET formatting, fine-tuning, generation, measures.

Pure torch / transformers / pyarrow code with no Django import; ``distillation.services``
feeds it Parquet files and folders and saves what it returns.
"""
