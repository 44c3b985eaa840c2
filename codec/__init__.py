"""lic: a learned image codec."""
