"""The hubtools version, in a module of its own so that no module imports the package root for it.

pyproject.toml reads it from here (``[tool.setuptools.dynamic]``).
"""

__version__ = "0.1.0"
