"""Entry point of the hubtools Space: the app of `hubtools app`, run from the hubtools source that
`hubtools space deploy` ships beside this file (hubtools/, templates in hubtools/_cards/), so
the Space runs exactly the version that deployed it."""

import logging

import hubtools
from hubtools.app import create_app

logging.basicConfig(level=logging.INFO)
logging.getLogger("hubtools.space").info("hubtools %s from %s", hubtools.__version__, hubtools.__file__)

demo = create_app()

if __name__ == "__main__":
    # long jobs queue; reviews stay responsive (see hubtools.app)
    demo.queue(default_concurrency_limit=4, max_size=64).launch()
