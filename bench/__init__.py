"""Benchmarks: workerbridge against its peers on the same workloads, in one run.

Run ``python -m bench`` (or ``make bench``); ``python -m bench --help`` lists the options.

Layout::

    __main__.py    command line: pick workloads, run them, print and save the report
    _runner.py     the parent side: one child process per (workload, contender, repeat),
                   interleaved, each with a timeout and a check for leftover processes
    _child.py      the child side: measure one workload on one contender, print JSON
    _workloads.py  what each workload does, its sizes (full / --quick) and its goal
    _peers.py      adapters giving every pool the same small interface
    _tasks.py      the task functions every contender runs (standard library only)
    _machine.py    machine facts and physical limits (memcpy, pipe, sha256, wake-up)
    _bridges.py    the bridge workloads: a bridge operation against a command-line tool
                   (pigz, zstd, sha256sum, cp), and their limits (zlib-6, zstd-3, AES-GCM)
    _sample.py     the bridge workloads' input: mixed content, made deterministically
    _report.py     tables, ratios to the best peer, goals, Markdown

This module imports nothing: worker processes of every contender import ``bench`` (the
child's ``__main__``), and that must stay cheap and equal for all of them.
"""
