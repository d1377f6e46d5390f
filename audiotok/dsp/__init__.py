"""Signal processing on mono float32 numpy arrays (no I/O here)."""
