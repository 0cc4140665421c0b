"""The HTTP service: current scores and health, reading the compacted `user-scores` topic."""
