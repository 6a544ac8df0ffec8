#!/usr/bin/env python3
"""Runs a command and prints its wall time and peak resident memory as one JSON line.

Usage: measure.py LABEL -- COMMAND [ARG...]
Peak memory is the child's ru_maxrss (KiB on Linux), so nothing is sampled and nothing is missed.
"""
import json, os, resource, subprocess, sys, time

label = sys.argv[1]
command = sys.argv[sys.argv.index("--") + 1:]
started = time.monotonic()
result = subprocess.run(command, stdout=subprocess.DEVNULL)
elapsed = time.monotonic() - started
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"label": label, "seconds": round(elapsed, 3), "peak_mib": round(peak_kib / 1024, 1), "status": result.returncode}))
sys.exit(result.returncode)
