#!/usr/bin/env python3
"""scikit-learn's HDBSCAN on a matrix file: the reference crmbet-ml's HDBSCAN is held to.

Reads a matrix (`.npy`, or `.csv` of numbers without a header, one point per row), runs
sklearn.cluster.HDBSCAN(min_cluster_size=..., min_samples=..., copy=True) with every other
parameter at its default (Euclidean, excess of mass, allow_single_cluster=False) and prints
one JSON line: {"labels": [...], "clusters": N, "noise": M, "seconds": S, "sklearn": "1.9.1"}
with -1 for noise, as scikit-learn labels it.

Usage: hdbscan_sklearn.py MATRIX --min-cluster-size N [--min-samples M]
Exit status: 0 on success, 1 when the matrix cannot be read or clustered (the reason goes
to stderr), 2 on bad usage.

Used by crates/crmbet-ml/tests/hdbscan_vs_sklearn.rs with the Python named by
CRMBET_PEER_PYTHON (numpy and scikit-learn, see tests/python/peer-requirements.txt).
"""

import argparse
import json
import sys
import time


def read_matrix(path):
    import numpy as np

    if path.endswith(".npy"):
        matrix = np.load(path)
    else:
        matrix = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    return np.ascontiguousarray(matrix, dtype=np.float64)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("matrix", help="a .npy or headerless .csv file, one point per row")
    parser.add_argument("--min-cluster-size", type=int, required=True)
    parser.add_argument("--min-samples", type=int, default=None,
                        help="default: min_cluster_size, as scikit-learn does")
    args = parser.parse_args()
    try:
        import sklearn
        from sklearn.cluster import HDBSCAN

        matrix = read_matrix(args.matrix)
        started = time.perf_counter()
        labels = HDBSCAN(min_cluster_size=args.min_cluster_size, min_samples=args.min_samples,
                         copy=True).fit_predict(matrix)
        seconds = time.perf_counter() - started
    except Exception as error:  # noqa: BLE001 - reported to the caller, not handled
        print(f"hdbscan_sklearn: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    labels = [int(label) for label in labels]
    print(json.dumps({
        "labels": labels,
        "clusters": len(set(labels) - {-1}),
        "noise": labels.count(-1),
        "seconds": round(seconds, 3),
        "sklearn": sklearn.__version__,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
