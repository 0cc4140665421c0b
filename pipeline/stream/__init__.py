"""The processing layer between the broker and the domain: watermarks (pure, no I/O)."""
