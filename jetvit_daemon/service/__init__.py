"""The service shell: composition root, signals, sd_notify, HTTP, metrics, logging."""
