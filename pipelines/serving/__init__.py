"""Real-time serving: the FastAPI app (``app.py``), the model holder with alias polling
(``models.py``), the answers of the read endpoints (``scoring.py``), validated events and their
real-time counters (``events.py``) and the Prometheus metrics (``metrics.py``).

``personalize serve`` runs it; nothing here imports ``flows``, ``cli``, ``orchestration`` or
``local``.
"""
