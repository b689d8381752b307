"""The stream of CI events and the release timelines built from it."""
