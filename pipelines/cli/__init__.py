"""The ``personalize`` command: one module per command group, each registering its commands on
:data:`pipelines.cli.common.app`; importing this package registers them all."""

from pipelines.cli import (  # noqa: F401  (imported for the commands they register)
    alerts,
    data,
    features,
    history,
    local,
    models,
    monitor,
    platform,
    runs,
    serve,
    story,
)
from pipelines.cli.common import app

__all__ = ["app"]
