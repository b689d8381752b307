"""Incidents, detection, postmortems and lessons learned."""
