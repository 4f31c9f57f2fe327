"""What one process keeps across the days of a history run, so each day costs less to validate.

``personalize load-history`` validates a year of batches in one process, day after day. Three
things need not be done again for each of them:

* reading every curated file to learn the ids of other days, the known users and items and the
  trailing row counts (:class:`~pipelines.validation.batch.CuratedCache`);
* rendering a Data Docs page per clean batch: they are rendered together when the session ends
  (:class:`~pipelines.validation.gx_runner.DeferredDocs`); a quarantined batch's page at once;
* judging an empty batch GX has already judged alike
  (:class:`~pipelines.validation.gx_runner.EmptyVerdicts`).

Each batch is curated or quarantined exactly as without a session (the history tests compare the
bulk path with the DAGs day by day). Lineage names every page; the pages of clean batches exist
once the session is over.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipelines.validation.batch import CuratedCache
from pipelines.validation.gx_runner import DeferredDocs, EmptyVerdicts

if TYPE_CHECKING:
    from pipelines.config import Settings


@dataclass
class ValidationSession:
    docs: DeferredDocs
    curated: CuratedCache = field(default_factory=CuratedCache)
    empty_verdicts: EmptyVerdicts = field(default_factory=EmptyVerdicts)

    def finish(self) -> None:
        """Render the Data Docs pages still pending (and the index); safe to call again."""
        self.docs.build()


@contextmanager
def validation_session(settings: Settings) -> Iterator[ValidationSession]:
    """A session for the days validated inside the block; pending pages are rendered on the way
    out, whatever happens inside (lineage already names them)."""
    session = ValidationSession(docs=DeferredDocs(settings.state_dir))
    try:
        yield session
    finally:
        session.finish()
