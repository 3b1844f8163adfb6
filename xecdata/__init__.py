"""xecdata: detector geometry, normalization schemes, ROOT I/O, the Zarr store, ingestion,
loaders, reweighting and the toy simulator. Imports no torch at module import time (loaders
import it lazily)."""

__version__ = "0.1.0"
