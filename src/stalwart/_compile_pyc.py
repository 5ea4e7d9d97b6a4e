# Run by the *target* interpreter (CPython/PyPy 3.8+), never imported by stalwart itself.
# Reads one JSON request per line on stdin: [source_path, final_path]; an empty line ends.
# For each, writes to stdout one JSON header line, then the bytes it announces:
#   {"pyc": <cache path relative to the final file's dir>, "size": N}\n<N bytes of .pyc>
#   {"error": "..."}\n
# after a marker line (a .pth file may have printed anything at start-up). It compiles but does
# not write files: stalwart writes the bytecode through its filesystem layer. Paths in, raw
# bytes out: no base64, no JSON around the data.
import importlib.util
import json
import os
import sys
from importlib import _bootstrap_external


def main():
    # Like py_compile: with SOURCE_DATE_EPOCH set (reproducible builds), hash-checked bytecode.
    hashed = bool(os.environ.get("SOURCE_DATE_EPOCH"))
    out = sys.stdout.buffer
    out.write(b"\x1estalwart-compile-begin\x1e\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            break
        source, final = json.loads(line)
        try:
            with open(source, "rb") as f:
                data = f.read()
            st = os.stat(source)
            code = compile(data, final, "exec", dont_inherit=True)
            if hashed:
                source_hash = importlib.util.source_hash(data)
                pyc = bytes(_bootstrap_external._code_to_hash_pyc(code, source_hash, True))
            else:
                pyc = bytes(
                    _bootstrap_external._code_to_timestamp_pyc(code, st.st_mtime, st.st_size)
                )
            cache = importlib.util.cache_from_source(final)
            rel = os.path.relpath(cache, os.path.dirname(final))
            header = {"pyc": rel, "size": len(pyc)}
            out.write(json.dumps(header).encode("utf-8") + b"\n")
            out.write(pyc)
        except (
            SyntaxError,
            ValueError,
            UnicodeDecodeError,
            OSError,
            RecursionError,
            MemoryError,
        ) as exc:
            out.write(json.dumps({"error": "%s: %s" % (type(exc).__name__, exc)}).encode() + b"\n")
        out.flush()


main()
