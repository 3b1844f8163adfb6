"""Normalization schemes as versioned data: `name@version` -> frozen parameters + content hash.

A scheme turns raw per-sensor photon counts `npho` and times `time` (seconds), both (..., 4760),
into the float32 (..., 4760, 2) tensor the models read: channel 0 = forward(npho) with the
scheme's photon-count transform (log1p, sqrt, anscombe, linear; see `transforms`), channel 1 =
time / time_scale - time_shift. Built-ins (`legacy@1`, `new@1`) are the JSON files of this
package; users register more with `load_scheme_file`. Changing any parameter of a version is
refused: a new definition needs a new version, and its content hash changes with any parameter.

Invalid-sensor rules (applied after converting the inputs to float32, in this order):

1. Dead sensor: npho > 9e9 (the 1e10 marker of the input files), NaN or +-Inf. Both channels
   get sentinels: npho -> npho_sentinel, time -> time_sentinel.
2. npho below the transform's domain (log1p: npho <= -s1, sqrt: npho < 0, anscombe:
   npho < -3/8 s1, linear: never) and not dead: npho is replaced by a raw zero, so the npho
   channel holds forward(0) (0.0 except for anscombe, 2 sqrt(3/8) / s2), and the time is
   invalid (time_sentinel).
3. The time is invalid (time -> time_sentinel, npho channel kept) also where
   npho <= npho_threshold, |time| > 9e9, or time is NaN or +-Inf.
4. A valid normalized npho is clamped to be strictly above npho_sentinel (to the next float32
   up), and a valid normalized time that lands exactly on time_sentinel is moved to the next
   float32 up, so sentinels only ever mean "invalid": a dead sensor is recognisable in both
   channels, and "already invalid" is exactly `x[..., 1] == time_sentinel`. A scheme's
   npho_sentinel must lie below forward(0), so only negative counts near the domain limit can
   be clamped.

Built-in schemes use npho_threshold = 0 (a time is invalid only where there is no light) and
npho_sentinel = time_sentinel (-5.0 legacy, -1.0 new). `denormalize` inverts both channels and
returns NaN where a channel holds its sentinel.
"""

from xecdata.schemes.registry import (
    SchemeConflictError,
    SchemeError,
    UnknownSchemeError,
    builtin_scheme_files,
    get_scheme,
    list_schemes,
    load_scheme_file,
    parse_scheme_id,
    register_scheme,
    scheme_from_file,
    scheme_json_schema,
    validate_scheme_dict,
)
from xecdata.schemes.scheme import DEAD_ABOVE, PARAMETER_FIELDS, TIME_INVALID_ABOVE, Scheme
from xecdata.schemes.transforms import TRANSFORMS, Transform, get_transform

__all__ = [
    "DEAD_ABOVE",
    "PARAMETER_FIELDS",
    "TIME_INVALID_ABOVE",
    "TRANSFORMS",
    "Scheme",
    "SchemeConflictError",
    "SchemeError",
    "Transform",
    "UnknownSchemeError",
    "builtin_scheme_files",
    "get_scheme",
    "get_transform",
    "list_schemes",
    "load_scheme_file",
    "parse_scheme_id",
    "register_scheme",
    "scheme_from_file",
    "scheme_json_schema",
    "validate_scheme_dict",
]
