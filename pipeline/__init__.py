"""Streaming lifecycle scoring: settings, Faust app, domain rules and the `lifecycle` command."""
