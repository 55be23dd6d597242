"""The examples in hubtools' docstrings run and print what they say (``doctest``).

One test over every module rather than ``--doctest-modules``: examples that need a server or
a file marked ``+SKIP`` stay documentation and do not show up as skipped tests.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import hubtools


def _modules():
    for info in pkgutil.walk_packages(hubtools.__path__, "hubtools."):
        if info.name.startswith(("hubtools._cards", "hubtools._space")):
            continue  # templates (symlinked folders), not code
        yield importlib.import_module(info.name)


def test_every_docstring_example_prints_what_it_says():
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failures: list[str] = []
    modules = list(_modules())
    for module in modules:
        for test in finder.find(module):
            runner.run(test, out=lambda text, name=test.name: failures.append(f"{name}:\n{text}"))
    summary = runner.summarize(verbose=False)
    assert not failures, "\n".join(failures)
    assert len(modules) > 40 and summary.attempted >= 40  # the examples were found and run
