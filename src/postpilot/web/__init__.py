"""The web app: server-rendered pages (Jinja2 + htmx) on the same store and roles as the API."""
