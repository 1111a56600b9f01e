"""What Celery workers of ``make stack`` import: the task instances' hostname callable.

Imported by Celery workers and their task processes (``[core] hostname_callable``), so stdlib only.
"""

from __future__ import annotations

import os
import socket

#: the variable ``make stack`` sets per worker (launchers.stack.WORKER_HOSTNAME_VAR)
HOSTNAME_VAR = "AIRSAGE_STACK_WORKER_HOSTNAME"


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the stack's workers: each worker's own loopback address.

    In compose every worker container has its own hostname, which task instances record. On
    one machine every worker has the same FQDN, so each gets an address of its own in
    127.0.0.0/8 (no DNS lookup ever happens for it, unlike a made-up name). Without the
    variable: the machine's FQDN, Airflow's default.
    """
    return os.environ.get(HOSTNAME_VAR) or socket.getfqdn()
