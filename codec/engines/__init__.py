"""What runs the float transforms g_a, h_a and g_s: ONNX Runtime (no torch) or torch, and the ONNX
graphs exported for the first."""
