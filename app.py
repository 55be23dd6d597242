"""Entry point for `python app.py` and for a Hugging Face Space."""

from hubtools.app import create_app

demo = create_app()

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=4).launch()
