"""Data import: canonical formats, file readers and the idempotent, revision-keeping importer."""
