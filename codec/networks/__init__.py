"""The torch model and its parts: g_a, g_s, the hyperprior, the channel-conditional slices, the
integer networks behind every probability, the gain units, and ``ModelConfig`` (training and --effort)."""
