"""Inference runners behind one interface: ONNX Runtime anywhere, TensorRT on a Jetson."""
