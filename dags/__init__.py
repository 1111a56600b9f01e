"""DAG files (wiring only) and the ``python -m dags.demo`` entry point."""
