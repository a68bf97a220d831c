"""``bench/lookup.py``'s clip makers and transformations, for the lookup's tests: the bench's
own code, loaded from its file (``bench/`` is scripts, not a package on the test path)."""

from __future__ import annotations

from benchscript import load_bench

_bench = load_bench("lookup")
encode = _bench.encode
synthetic_clip = _bench.synthetic_clip
transform_file = _bench.transform_file
