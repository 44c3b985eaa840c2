"""The residual layer: lossless and near-lossless (version-2) files, and the residual coders
lic-exact-5, -4, -3 and -2 (compiled, ``exact2.c``) and lic-exact-1 (numpy) that code their samples."""
