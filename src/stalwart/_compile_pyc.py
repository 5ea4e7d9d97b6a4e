# Run by the *target* interpreter (CPython/PyPy 3.8+), never imported by stalwart itself.
# Reads [[source_path, final_path], ...] as JSON on stdin; for each, prints one JSON line:
# {"pyc": <cache path relative to the final file's dir>, "data": <base64>} or {"error": ...},
# after a marker line (a .pth file may have printed anything at start-up).
# It compiles but does not write: stalwart writes the bytecode through its filesystem layer.
import base64
import importlib.util
import json
import os
import sys
from importlib import _bootstrap_external


def main():
    items = json.load(sys.stdin)
    # Like py_compile: with SOURCE_DATE_EPOCH set (reproducible builds), hash-checked bytecode.
    hashed = bool(os.environ.get("SOURCE_DATE_EPOCH"))
    out = sys.stdout
    out.write("\x1estalwart-compile-begin\x1e\n")
    for source, final in items:
        try:
            with open(source, "rb") as f:
                data = f.read()
            st = os.stat(source)
            code = compile(data, final, "exec", dont_inherit=True)
            if hashed:
                source_hash = importlib.util.source_hash(data)
                pyc = _bootstrap_external._code_to_hash_pyc(code, source_hash, True)
            else:
                pyc = _bootstrap_external._code_to_timestamp_pyc(code, st.st_mtime, st.st_size)
            cache = importlib.util.cache_from_source(final)
            rel = os.path.relpath(cache, os.path.dirname(final))
            row = {"pyc": rel, "data": base64.b64encode(bytes(pyc)).decode("ascii")}
        except (SyntaxError, ValueError, UnicodeDecodeError, OSError) as exc:
            row = {"error": "%s: %s" % (type(exc).__name__, exc)}
        out.write(json.dumps(row) + "\n")
    out.flush()


main()
