"""The app must not try to reach the internet: no analytics."""

from hubtools.app import create_app


def test_app_has_gradio_analytics_off():
    assert create_app().analytics_enabled is False
