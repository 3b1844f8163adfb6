"""`xec analyze`: studies of output files (inference predictions against truth or the
conventional reconstruction; MAE / inpainter prediction files)."""
