"""airsage's Airflow integration: hooks, operators, sensors, triggers and links.

Airflow puts ``plugins/`` on ``sys.path``, so this package is imported as ``airsage``.
Modules here import only Airflow at the top; boto3-heavy hooks and ``sm_pipeline`` are
imported inside ``execute`` so that DAG files stay quick to parse.
"""
