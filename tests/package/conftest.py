"""tests/package: airsage as other teams get it. The user project beside this file is a fixture (its own
tests run in their own venv, by test_user_project.py), never part of this suite."""

collect_ignore = ["user_project"]
