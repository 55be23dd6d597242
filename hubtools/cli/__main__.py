"""``python -m hubtools.cli``: the same as the ``hubtools`` command."""

from . import main

if __name__ == "__main__":
    main()
