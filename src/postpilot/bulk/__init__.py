"""Bulk CSV import and export of posts: the file format (`columns`), one row into a post's
fields (`rows`), the row-by-row report (`report`) and the export's rows (`export`). No HTTP
here: the API and the CLI both run an import through `api/routes/bulk.py`."""
