"""The local web page and JSON API (`mnistlab serve`): `create_app` in app.py, the page in static/."""
