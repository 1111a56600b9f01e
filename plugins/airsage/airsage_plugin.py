"""The plugins-folder entry of airsage: registers the Airflow plugin when airsage is not installed.

Airflow's plugin loader imports this file by itself (see ``.airflowignore`` beside it) when the
repository's ``plugins/`` folder is Airflow's plugins folder (the project-template use, the
docker-compose image). When the airsage distribution is installed (``pip install airsage``), its
``airflow.plugins`` entry point registers the same plugin (``airsage.plugin.AirsagePlugin``);
registering it here as well would be a second plugin of the same name, which Airflow reports as an
import error. So this file exposes the plugin only without the install.
"""

from __future__ import annotations


def _installed() -> bool:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        entry_points = distribution("airsage").entry_points
    except PackageNotFoundError:
        return False
    return any(ep.group == "airflow.plugins" for ep in entry_points)


if not _installed():
    from airsage.plugin import AirsagePlugin  # noqa: F401 - what the plugin loader looks for
