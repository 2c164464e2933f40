"""Use cases: one function per thing a caller wants done, with explicit collaborators; HTTP, CLI and console only parse, call and present."""
