"""The DR dashboard: an Airflow UI view of the DR state, built from recorded results only.

`data` reads and caches the sources, `render` turns them into one HTML page with inline SVG plots,
`app` serves it (FastAPI, read-only, Airflow login required); `plugins/mldr_dashboard_plugin.py`
registers the app and its entry in the Airflow navigation.
"""
