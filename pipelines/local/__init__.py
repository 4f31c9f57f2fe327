"""The laptop-only parts: ``personalize up``/``down`` (the supervisor of the Airflow and MLflow
processes), ``personalize status`` and the quickstart's story. Production runs none of this."""
