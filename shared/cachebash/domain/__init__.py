"""Pure rules: models, the task state table, errors. Imports nothing from the layers above."""
