"""Camera capture: URIs, capture backends (a gst-launch-1.0 child, OpenCV, image files, the synthetic camera),
the GStreamer element table, and the per-source supervisor."""
