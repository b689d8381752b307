"""Local stand-ins for the services Shiplog talks to: tests never reach the internet."""

from __future__ import annotations
