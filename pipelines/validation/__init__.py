"""Validation gate: GX suites per table, curated or quarantined, Data Docs."""
