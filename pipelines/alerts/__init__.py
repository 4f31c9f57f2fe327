"""Alerts: what the platform tells people, how it reaches them, and what they acknowledged.

Records (``alerts.jsonl``, deduplication, resolution), delivery (webhook, e-mail, with retries),
the daily digest, acknowledgements and the alert of a failed task. Any package may raise an
alert; this one knows nothing of drift, models or DAGs.
"""
