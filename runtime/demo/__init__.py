"""The demo (`keng demo`), the simulated device fleet (`keng simulate`) and the sample district."""
