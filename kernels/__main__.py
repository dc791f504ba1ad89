"""python -m kernels build  — build (or find cached) and load the kernels, print what was loaded."""

import sys
import time

from kernels.build import build_dir, detect_isa, load

if __name__ == "__main__":
    if sys.argv[1:] != ["build"]:
        sys.exit("usage: python -m kernels build")
    t0 = time.perf_counter()
    ops = load(verbose=True)
    isa = detect_isa()
    print(f"kernels loaded: isa={isa} dir={build_dir(isa)} in {time.perf_counter() - t0:.1f}s")
