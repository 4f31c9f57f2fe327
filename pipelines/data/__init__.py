"""Data contract, synthetic shop, importer and partitioned I/O."""
