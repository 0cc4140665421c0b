"""Faust agents: thin loops that decode, call the domain code, update state and send."""
