"""Wall-clock install time of real wheels: stalwart against uv, pip and pypa/installer.

    .venv/bin/python -m benchmarks.speed [--rounds 7] [--disk DIR] [--only SCENARIO,...]
        [--quick] [--wheels DIR] [--scipy] [--many 500] [--stalwart-args "..."]
        [--write docs/benchmarks.md] [--json FILE]

Run from the repository root with the repo venv (``pip install -e '.[test,bench]'``; without
the ``bench`` extra, matplotlib, the plot is skipped with a message).

Every tool installs the same corpus (``--no-deps``, local wheel files, no index) through its
real command line (``tools.py``) into a fresh venv per run, in the scenarios of ``cells.py``:
cold and warm cache, with and without bytecode, one tiny wheel into a venv of 500
distributions, and the floors (``cp -al``, ``cp -r``, ``unzip``) of the same bytes. Rounds
alternate the tools (``runner.py``); the report gives medians, the spread and the ratio to uv
and to pip per scenario (``report.py``), with the machine, its load and the tool versions
(``machine.py``). The corpus (``corpus.py``) is pinned by hash and downloaded once into
``.cache/bench-wheels/``.

The default base directory is on tmpfs (``/dev/shm``): what is left is the tools' own work, not
the disk's. ``--disk DIR`` runs the same rounds on a disk directory too, interleaved. Wall-clock
figures are only as good as the machine is quiet: the load average is printed before and after.
"""
