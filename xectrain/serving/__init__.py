"""Using a trained model: rebuild it from a checkpoint, validate and export it, and run ONNX
inference on ROOT files or stores."""
