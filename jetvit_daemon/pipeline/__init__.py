"""Camera-to-inference pipeline: sources → batcher → runner → sinks, one thread per stage."""
