"""xecmodel: network blocks, the geometry-aware encoder, task heads, MAE, inpainter, ONNX export. Never reads files."""
