"""Network audit for subprocesses: records every attempt to reach a non-loopback address.

Put this directory on a subprocess's PYTHONPATH and set ``AIRSAGE_NETWORK_AUDIT_DIR``; Python
imports ``sitecustomize`` at start-up and this one installs a :func:`sys.addaudithook` hook that
appends one JSON line per attempt to ``<dir>/attempts.jsonl``:

- ``socket.connect`` to an address that is not loopback (IPv4 127/8, ::1, IPv4-mapped loopback)
  and not a Unix socket -- this is where the metadata service (169.254.169.254, 169.254.170.2,
  fd00:ec2::254) shows up;
- ``socket.getaddrinfo`` of a host name that is not a loopback name nor this machine's own name
  (which Airflow looks up to label its task instances; IP literals are left to the connect): a
  name lookup is the first half of a connection, and in a sandbox without DNS it is the only half
  that happens.

Every process that loads the hook also appends ``{"pid", "argv"}`` to ``<dir>/processes.jsonl``, so
a test can show that child processes (the local runner's job processes, Airflow's task processes)
were audited too.

After recording, the attempt is refused with ``ConnectionRefusedError`` (an OSError, what an
unreachable network gives): a regression is caught without a packet ever leaving the machine, and
callers that tolerate a dead network (botocore's metadata fetcher) behave as they would offline.

The local runner's job processes get a ``sitecustomize`` of their own first on PYTHONPATH
(``sm_pipeline/local/container_hook``); that one runs the next ``sitecustomize`` on the path, which
is this one. This one does the same for whatever it shadows.
"""

import ipaddress
import json
import os
import socket
import sys

_DIR = os.environ.get("AIRSAGE_NETWORK_AUDIT_DIR", "")
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
_OWN_NAMES = {socket.gethostname().lower(), socket.gethostname().split(".", 1)[0].lower()} - {""}


def _append(name, record):
    # O_APPEND with one write per line: lines from concurrent processes never interleave.
    line = (json.dumps(record, default=repr) + "\n").encode()
    fd = os.open(os.path.join(_DIR, name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _is_local_host(host):
    if host is None or host == "":
        return True  # bind-style lookups of the wildcard address
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").split("%", 1)[0]
    if host.lower() in _LOOPBACK_NAMES or host.lower() in _OWN_NAMES or host.lower().endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name that is not a loopback name
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def _is_ip_literal(host):
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        ipaddress.ip_address(str(host).strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def _audit(event, args):
    if event == "socket.connect":
        address = args[1]
        if not isinstance(address, tuple):
            return  # AF_UNIX path (str/bytes): local by definition
        host = address[0]
    elif event == "socket.getaddrinfo":
        host = args[0]
        address = args[:2]
        if _is_ip_literal(host):
            return  # resolved without the network; the connect that may follow is what counts
    else:
        return
    if _is_local_host(host):
        return
    _append("attempts.jsonl", {"event": event, "address": list(address), "pid": os.getpid(),
                               "argv": sys.argv[:4]})
    raise ConnectionRefusedError(f"refused by the airsage network audit: {event} {address!r}")


def _chain_next_sitecustomize():
    """Run the ``sitecustomize`` this one shadows, as Python would have without this directory."""
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    # Only the entries after this directory: those before it were searched already (looking
    # there again would find the sitecustomize that chained to this one, and loop).
    entries = [os.path.abspath(entry or os.curdir) for entry in sys.path]
    rest = sys.path[entries.index(here) + 1:] if here in entries else []
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


if _DIR:
    sys.addaudithook(_audit)
    _append("processes.jsonl", {"pid": os.getpid(), "argv": sys.argv, "executable": sys.executable})
_chain_next_sitecustomize()
