#!/usr/bin/env python3
"""Reference values for tests/eval/test_metrics.cpp, computed with Debian's python3-scipy.

usage: scipy_oracle.py IN.json OUT.json
IN:  {"cases": [{"x": [...], "y": [...]}, ...]}
OUT: {"cases": [{"pearson", "spearman", "tau_b", "tau_a"}, ...]}   (null where undefined)

tau_a is not offered by scipy (kendalltau is tau-b), so it is recovered from scipy's tau-b and
independently counted ties:  tau_b = (C - D) / sqrt((n0 - n1) (n0 - n2)),  tau_a = (C - D) / n0,
with n0 = n(n-1)/2 and n1, n2 = sum over tie groups of t(t-1)/2 in x and y.
"""
import json
import math
import sys
import warnings

import numpy as np
from scipy import stats


def tie_pairs(v):
    _, counts = np.unique(v, return_counts=True)
    return float(sum(c * (c - 1) / 2 for c in counts))


def finite_or_none(v):
    v = float(v)
    return v if math.isfinite(v) else None


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)["cases"]
    out = []
    warnings.simplefilter("ignore")  # constant input warnings: we report null instead
    for c in cases:
        x = np.asarray(c["x"], dtype=np.float64)
        y = np.asarray(c["y"], dtype=np.float64)
        n = len(x)
        r = {"pearson": None, "spearman": None, "tau_b": None, "tau_a": None}
        if n >= 2:
            r["pearson"] = finite_or_none(stats.pearsonr(x, y)[0]) if n >= 2 and np.ptp(x) > 0 and np.ptp(y) > 0 else None
            r["spearman"] = finite_or_none(stats.spearmanr(x, y)[0]) if np.ptp(x) > 0 and np.ptp(y) > 0 else None
            n0 = n * (n - 1) / 2
            n1, n2 = tie_pairs(x), tie_pairs(y)
            if n1 < n0 and n2 < n0:
                tb = float(stats.kendalltau(x, y, variant="b")[0])
                r["tau_b"] = tb
                r["tau_a"] = tb * math.sqrt((n0 - n1) * (n0 - n2)) / n0
            else:
                r["tau_a"] = 0.0  # one side constant: every pair is tied, C = D = 0
        out.append(r)
    with open(sys.argv[2], "w") as f:
        json.dump({"cases": out, "scipy": __import__("scipy").__version__}, f)


if __name__ == "__main__":
    main()
