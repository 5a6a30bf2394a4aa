"""The web explorer: a Flask app (app.py) serving one static page (static/) on top of the shared Session."""
