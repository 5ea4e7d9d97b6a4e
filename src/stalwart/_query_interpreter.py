# Run by the *target* interpreter (any CPython/PyPy 3.8+), never imported by stalwart itself.
# Prints one JSON object: the install scheme and what is needed to compute its wheel tags.
# Kept free of f-strings with '=' and of anything newer than Python 3.8.
import json
import os
import sys
import sysconfig


def main():
    args = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    prefix = args.get("prefix")
    if prefix:
        scheme = "nt" if os.name == "nt" else "posix_prefix"
        # Like pip: every base, including installed_base (headers), moves to the prefix.
        prefix_vars = {
            "base": prefix,
            "platbase": prefix,
            "installed_base": prefix,
            "installed_platbase": prefix,
        }
        paths = sysconfig.get_paths(scheme, vars=prefix_vars)
    else:
        get_default = getattr(sysconfig, "get_default_scheme", None)
        if get_default is None:
            get_default = sysconfig._get_default_scheme
        scheme = get_default()
        paths = sysconfig.get_paths(scheme)
    in_venv = sys.prefix != getattr(sys, "base_prefix", sys.prefix)
    config = sysconfig.get_config_vars()
    out = {
        "executable": sys.executable,
        "prefix": prefix or sys.prefix,
        "base_prefix": getattr(sys, "base_prefix", sys.prefix),
        "in_venv": in_venv,
        "scheme": scheme,
        "paths": {key: paths[key] for key in ("purelib", "platlib", "scripts", "data", "include")},
        "implementation": sys.implementation.name,
        "cache_tag": sys.implementation.cache_tag,
        "version": list(sys.version_info[:3]),
        "platform": sysconfig.get_platform(),
        "soabi": config.get("SOABI") or "",
        "ext_suffix": config.get("EXT_SUFFIX") or "",
        "debug": bool(config.get("Py_DEBUG")),
        "gil_disabled": bool(config.get("Py_GIL_DISABLED")),
        "pointer_bits": 64 if sys.maxsize > 2**32 else 32,
        "os_name": os.name,
        "sys_platform": sys.platform,
        "stdlib": sysconfig.get_paths()["stdlib"],
        "platstdlib": sysconfig.get_paths()["platstdlib"],
    }
    sys.stdout.write(json.dumps(out))


main()
