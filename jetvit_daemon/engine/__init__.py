"""Model and engine tooling behind `jetvit-daemon engine export`, `engine build` and `bench`: ViT → ONNX
(`vit_onnx`, `export`), ONNX → TensorRT engine (`build`), and the raw runner benchmark (`bench`). Imported only by
those commands, never by the running daemon."""
