# Run by the *target* interpreter (any CPython/PyPy 3.8+), never imported by stalwart itself.
# Prints one JSON object between two markers (a .pth file may print before us): the install
# scheme, what is needed to compute wheel tags, and the PEP 508 marker environment.
# Kept free of f-strings with '=' and of anything newer than Python 3.8.
import importlib.util
import json
import os
import platform
import sys
import sysconfig

BEGIN = "\x1estalwart-query-begin\x1e"
END = "\x1estalwart-query-end\x1e"


def markers():
    # PEP 508 "Environment Markers", computed the way packaging.markers does.
    impl = sys.implementation
    version = "%d.%d.%d" % impl.version[:3]
    kind = impl.version.releaselevel
    if kind != "final":
        version += kind[0] + str(impl.version.serial)
    return {
        "implementation_name": impl.name,
        "implementation_version": version,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


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
        "in_venv": in_venv,
        "paths": {key: paths[key] for key in ("purelib", "platlib", "scripts", "data", "include")},
        "implementation": sys.implementation.name,
        "version": list(sys.version_info[:3]),
        "platform": sysconfig.get_platform(),
        "soabi": config.get("SOABI") or "",
        "debug": bool(config.get("Py_DEBUG")),
        "gil_disabled": bool(config.get("Py_GIL_DISABLED")),
        "pointer_bits": 64 if sys.maxsize > 2**32 else 32,
        "os_name": os.name,
        "stdlib": sysconfig.get_paths()["stdlib"],
        "platstdlib": sysconfig.get_paths()["platstdlib"],
        "markers": markers(),
        "cache_tag": sys.implementation.cache_tag or "",
        "magic": importlib.util.MAGIC_NUMBER.hex(),
    }
    sys.stdout.write(BEGIN + json.dumps(out) + END)
    sys.stdout.flush()


main()
