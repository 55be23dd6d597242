"""Entry point for `python app.py` and for a Hugging Face Space: build the hubtools app and serve it.

Long jobs (loading, generation, checks, publishing) queue in their own groups; review clicks never
wait for them (see hubtools.app). Settings come from the environment (hubtools/config.py).
"""

from hubtools.app import create_app

demo = create_app()

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=4, max_size=64).launch()
