"""Thin Airflow adapters: what DAG tasks call. No AWS, Variable or network access at import time."""
