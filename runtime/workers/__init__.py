"""Background workers of `keng serve`: rendering, delivery reports, audit sealing, live read models."""
