"""Replayable stories of real releases, told as the webhook deliveries both CI platforms sent.

`pyodide` is the Pyodide 0.26.2 incident; `story` tells a story lane by lane, `payloads` builds
the bodies in the shapes GitHub and CircleCI document. Steps are not signed: callers sign each
with `Step.delivery(secret)` (`releases.deliveries`) and post it.
"""

from __future__ import annotations

from releases.scenarios.story import Step

__all__ = ["Step"]
