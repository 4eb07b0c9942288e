"""Every read model the server runs, in one list: its projections (for the runner) and their
tables (for `jacameno export`, the analyst's grant and the schema tests). A new read model is
added here and nowhere else."""

from __future__ import annotations

from eventstore import EventStore
from projections import analytics, assets, catalog, document, jobs, projects
from projections.runner import Projection
from projections.tables import Table


def read_models(store: EventStore) -> list[Projection]:
    """The projections, each with its own fold state (`store` is read on a cache miss)."""
    return [
        projects.projects_projection(),
        document.document_projection(store),
        analytics.analytics_projection(),
        assets.assets_projection(),
        jobs.jobs_projection(),
        catalog.catalog_projection(),
    ]


TABLES: tuple[Table, ...] = (
    *projects.TABLES,
    *document.TABLES,
    *analytics.TABLES,
    *assets.TABLES,
    *jobs.TABLES,
    *catalog.TABLES,
)
