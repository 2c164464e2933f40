"""Use cases: one function per thing a caller wants done, with explicit collaborators (never the HTTP bag)."""
