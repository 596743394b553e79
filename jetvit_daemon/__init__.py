"""jetvit-daemon: a power-aware vision-transformer inference daemon for NVIDIA Jetson boards."""

__version__ = "0.1.0"
