"""Publishing: the card and guidelines, the quality report, one staging folder, the Hub push and the Space.

* :mod:`~hubtools.publish.templates`: the one template resolver and Jinja environment;
* :mod:`~hubtools.publish.context`, :mod:`~hubtools.publish.quality`: what the templates show;
* :mod:`~hubtools.publish.merge`: front matter and section merging (hand edits kept);
* :mod:`~hubtools.publish.card`: rendering, :func:`~hubtools.publish.card.stage` (the files a
  publication carries, for ``card`` and ``push`` alike) and ``write_cards``;
* :mod:`~hubtools.publish.report`: the quality report, ``quality.json`` and plots;
* :mod:`~hubtools.publish.hub`: ``push``; :mod:`~hubtools.publish.space`: ``deploy_space``.

The report module imports the checks, so it is not loaded here: import it from its module.
"""

from .card import CardResult, write_cards
from .context import CardSettings
from .hub import PushResult, push
from .space import SpaceResult, deploy_space

__all__ = ["CardResult", "CardSettings", "PushResult", "SpaceResult", "deploy_space", "push", "write_cards"]
