"""Register the incidents app: its projection, its detection, its policy section."""

from __future__ import annotations

from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents and postmortems"

    def ready(self) -> None:
        """Feed incident events to the projection, detect after each batch, check probes."""
        from incidents.probes import probes_from
        from incidents.projection import IncidentProjection
        from incidents.services import detect_after_batch
        from releases import policy, projector

        if not any(isinstance(p, IncidentProjection) for p in projector.projections):
            projector.projections.append(IncidentProjection())
        if detect_after_batch not in projector.after_batch_hooks:
            projector.after_batch_hooks.append(detect_after_batch)
        policy.section_validators["probes"] = probes_from
