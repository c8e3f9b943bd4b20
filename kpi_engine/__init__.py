"""The domain: organisation, storage, ingestion and KPI maths. Knows nothing about chat or HTTP."""
