"""`ray start` kept on loopback: `python loopback_ray.py start ...` is the `ray` command line.

Ray 2.60 rewrites a loopback node or cluster address (127.0.0.1) to this machine's network address
(ray._private.services.resolve_ip_for_localhost), so a test cluster would listen beyond loopback.
This keeps 127.0.0.1 as given; everything else is Ray's own CLI.
"""

import sys

import ray._private.services as services


def keep_loopback() -> None:
    services.resolve_ip_for_localhost = lambda host: host


if __name__ == "__main__":
    keep_loopback()
    from ray.scripts.scripts import main

    sys.argv[0] = "ray"
    sys.exit(main())
